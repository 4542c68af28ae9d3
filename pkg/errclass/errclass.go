// Package errclass classifies cloud errors once, at the adapter, so that the poller and the
// executor decide on retry, conflict and permanence without importing a cloud client.
package errclass

import "errors"

// Kind is an error's class.
type Kind int

// Kinds.
const (
	// Permanent: retrying the same call will not help (bad request, permission, not found...).
	Permanent Kind = iota
	// Retryable: transient (UNAVAILABLE, 5xx, deadline on an idempotent call).
	Retryable
	// Quota: rate limited (RESOURCE_EXHAUSTED, 429): retry later and slow down.
	Quota
	// Conflict: a precondition failed (stale fingerprint, etag or generation: 412 / ABORTED).
	Conflict
	// NotFound: the resource does not exist.
	NotFound
)

func (k Kind) String() string {
	switch k {
	case Retryable:
		return "retryable"
	case Quota:
		return "quota"
	case Conflict:
		return "conflict"
	case NotFound:
		return "not_found"
	default:
		return "permanent"
	}
}

// Error carries a Kind and, for metrics, the API's code (e.g. "UNAVAILABLE", "412").
type Error struct {
	Kind Kind
	Code string
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Wrap classifies err. A nil err stays nil.
func Wrap(kind Kind, code string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: kind, Code: code, Err: err}
}

// Of returns err's Kind (Permanent when unclassified) and code ("" when unclassified).
func Of(err error) (Kind, string) {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind, e.Code
	}
	return Permanent, ""
}

// Is reports whether err is of kind k.
func Is(err error, k Kind) bool {
	got, _ := Of(err)
	return err != nil && got == k
}

// Transient reports whether err may succeed on retry (Retryable or Quota).
func Transient(err error) bool {
	k, _ := Of(err)
	return err != nil && (k == Retryable || k == Quota)
}
