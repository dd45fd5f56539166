package registry

import (
	"errors"
	"fmt"
	"strings"
)

// Errors returned by a Store. They are wrapped with the resource or the
// database they concern; test for them with errors.Is.
var (
	// ErrNotFound means the resource does not exist.
	ErrNotFound = errors.New("resource not found")
	// ErrAlreadyExists means a create-only Put (ifVersion CreateOnly) found
	// the resource already stored.
	ErrAlreadyExists = errors.New("resource already exists")
	// ErrVersionConflict means the caller's version (an If-Match ETag) is
	// not the stored one: somebody else changed the resource in between.
	ErrVersionConflict = errors.New("version conflict")
	// ErrFileManaged means the admin API tried to change or delete a
	// resource that the gateway's YAML file declares; the file is the source
	// of truth for it.
	ErrFileManaged = errors.New("resource is managed by the configuration file")
	// ErrInvalid means a resource, a reference or an argument failed
	// validation. A *ValidationError carries the fields at fault.
	ErrInvalid = errors.New("invalid resource")
	// ErrStoreUnavailable means the database cannot be used: it is missing,
	// corrupt, locked by another process, read-only or out of space.
	ErrStoreUnavailable = errors.New("registry store unavailable")
)

// FieldError is one problem with one field of a resource.
type FieldError struct {
	// Field is the JSON path of the field, e.g. "rate_limit.period" or
	// "certificates[2].fingerprint".
	Field string `json:"field"`
	// Message says what is wrong and, where possible, what is accepted.
	Message string `json:"message"`
}

// ValidationError lists every problem found with one resource. It matches
// ErrInvalid under errors.Is.
type ValidationError struct {
	// Key identifies the resource that was rejected.
	Key Key
	// Fields are the problems, in field order.
	Fields []FieldError
}

// Error joins every problem into one line, naming the resource first.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid " + e.Key.String() + ": " + strings.Join(parts, "; ")
}

// Is reports whether target is ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// problems collects field errors while an object validates itself.
type problems struct {
	key    Key
	fields []FieldError
}

func (p *problems) add(field, format string, args ...any) {
	p.fields = append(p.fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// err returns nil when nothing was added, so a valid object validates to nil.
func (p *problems) err() error {
	if len(p.fields) == 0 {
		return nil
	}
	return &ValidationError{Key: p.key, Fields: p.fields}
}

// unavailableError is a database failure explained for the operator. It
// matches both ErrStoreUnavailable and the driver's error.
type unavailableError struct {
	msg string
	err error
}

func (e *unavailableError) Error() string   { return e.msg + ": " + e.err.Error() }
func (e *unavailableError) Unwrap() []error { return []error{ErrStoreUnavailable, e.err} }

// invalidError is an argument or request the store refuses. It matches
// ErrInvalid and whatever its message wraps.
type invalidError struct{ err error }

func (e *invalidError) Error() string   { return e.err.Error() }
func (e *invalidError) Unwrap() []error { return []error{ErrInvalid, e.err} }

// invalidf formats a message as fmt.Errorf does, %w included, as an error
// matching ErrInvalid.
func invalidf(format string, args ...any) error {
	return &invalidError{err: fmt.Errorf(format, args...)}
}

// mergeProblems folds the *ValidationErrors of one resource into one,
// so a caller sees every field at fault at once. Other errors win.
func mergeProblems(errs ...error) error {
	var merged *ValidationError
	for _, err := range errs {
		if err == nil {
			continue
		}
		var ve *ValidationError
		if !errors.As(err, &ve) {
			return err
		}
		if merged == nil {
			merged = &ValidationError{Key: ve.Key}
		}
		merged.Fields = append(merged.Fields, ve.Fields...)
	}
	if merged == nil {
		return nil
	}
	return merged
}
