package admin

import "errors"

// ErrInvalidOptions is wrapped by every error New returns for Options it
// cannot serve with; the message names the field at fault.
var ErrInvalidOptions = errors.New("invalid admin API options")
