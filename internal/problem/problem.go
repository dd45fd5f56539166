package problem

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// Error is a rejection: what the client is told (Status, Code, Detail) and what
// only the operator sees (Cause, Log).
type Error struct {
	// Status is the HTTP status. Zero means the catalogue's status for Code.
	Status int
	// Code is one of the constants in codes.go.
	Code string
	// Detail is a short sentence safe to show any client: no paths, chains,
	// addresses or secrets.
	Detail string
	// Cause is the underlying error, for the log only.
	Cause error
	// Log carries extra attributes for the operator's log line (for example
	// the diagnosis of a TLS failure), as alternating keys and values.
	Log []any
	// Header is added to the response (e.g. WWW-Authenticate), may be nil.
	Header http.Header
}

// New returns an Error for code with a client-safe detail.
func New(code, detail string) *Error {
	return &Error{Code: code, Detail: detail}
}

// Wrap returns an Error for code with a client-safe detail and the cause kept
// for the log.
func Wrap(code, detail string, cause error) *Error {
	return &Error{Code: code, Detail: detail, Cause: cause}
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Code + ": " + e.Detail + ": " + e.Cause.Error()
	}
	return e.Code + ": " + e.Detail
}

func (e *Error) Unwrap() error { return e.Cause }

// HTTPStatus is the status the response carries.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	if c, ok := Catalogue[e.Code]; ok {
		return c.Status
	}
	return http.StatusInternalServerError
}

// Title is the catalogue's short title for the code.
func (e *Error) Title() string {
	if c, ok := Catalogue[e.Code]; ok {
		return c.Title
	}
	return http.StatusText(e.HTTPStatus())
}

// TypeBase prefixes every problem type URI: the type is this URN followed by
// the code, which docs/problem-codes.md documents.
const TypeBase = "urn:portcullis:problem:"

// Write sends e as an application/problem+json document. requestID is echoed
// in the body so a client can quote it to the operator.
func Write(w http.ResponseWriter, e *Error, requestID string) {
	h := w.Header()
	for k, v := range e.Header {
		h[k] = v
	}
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	status := e.HTTPStatus()
	body := Document{
		Type:      TypeBase + e.Code,
		Title:     e.Title(),
		Status:    status,
		Code:      e.Code,
		Detail:    e.Detail,
		RequestID: requestID,
	}
	b, err := json.Marshal(body)
	if err != nil {
		// Marshalling a struct of strings and an int cannot fail.
		panic(fmt.Sprintf("problem: marshal: %v", err))
	}
	b = append(b, '\n')
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// Document is the JSON body of a problem response (RFC 9457 with the code and
// request_id extension members).
type Document struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Code      string `json:"code"`
	Detail    string `json:"detail,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}
