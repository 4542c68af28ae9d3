// Package gcp adapts drwatchd's small interfaces (health.MetricsSource, checkpoint.LagSource,
// checkpoint.ObjectLister, traffic.Router, traffic.Scaler) to the official Google Cloud Go
// clients. Production and simulation differ only in the client options: every adapter takes an
// already built client, and NewClients builds them from Options.
//
// Every cloud error is classified here, once, with pkg/errclass, and wrapped with what was being
// done ("patch url map fraud-scorer: ..."). Every call carries a context deadline: the adapters
// add a per-call timeout (shorter deadlines from the caller win) and replace the clients' default
// retry policies, some of which retry UNAVAILABLE for up to 90 s or 10 min, with a bounded one.
package gcp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/googleapis/gax-go/v2"
	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/api/googleapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/drwatchd/drwatchd/pkg/errclass"
)

// Observer is told about every cloud call an adapter makes: the method (e.g.
// "monitoring.ListTimeSeries", "compute.UrlMaps.Patch"), the result code ("OK", a gRPC code name
// such as "UNAVAILABLE", or an HTTP status such as "412") and how long it took. The daemon turns
// it into Prometheus metrics; nil means no observation.
type Observer func(method, code string, dur time.Duration)

func (o Observer) observe(method string, start time.Time, err error) {
	if o == nil {
		return
	}
	code := "OK"
	if err != nil {
		_, code = errclass.Of(err)
		if code == "" {
			code = "UNKNOWN"
		}
	}
	o(method, code, time.Since(start))
}

// callKind tells classify what the call was.
type callKind int

const (
	// read: an idempotent read.
	read callKind = iota
	// write: an absolute (idempotent) write without a precondition.
	write
	// conditional: a write guarded by a fingerprint/etag. A stale one is HTTP 412 (Compute,
	// GCS) or ABORTED (Vertex AI); FAILED_PRECONDITION is a conflict only when it names the etag,
	// since Vertex AI also uses it for other conditions (an operation in progress on the
	// endpoint, a model that is not deployed).
	conditional
)

// classify wraps err with the errclass Kind and code of the cloud error it carries, and with
// msg as context ("patch url map fraud-scorer: ..."). It is called exactly once per error, at the
// adapter boundary; an already classified error keeps its class.
//
// DEADLINE_EXCEEDED (and the caller's own context deadline) is Retryable for every call
// drwatchd makes: reads are idempotent, and every write is either absolute (replica counts) or
// compare-and-set (fingerprint, etag), so repeating one cannot do harm; a lost write shows up as
// a Conflict on the retry.
func classify(err error, kind callKind, msg string) error {
	if err == nil {
		return nil
	}
	wrapped := fmt.Errorf("%s: %w", msg, err)
	var ce *errclass.Error
	if errors.As(err, &ce) {
		return errclass.Wrap(ce.Kind, ce.Code, wrapped)
	}
	k, code := classOf(err, kind)
	return errclass.Wrap(k, code, wrapped)
}

func classOf(err error, kind callKind) (errclass.Kind, string) {
	// HTTP (Compute, GCS): the status code decides.
	if hc := httpCode(err); hc > 0 {
		return classHTTP(hc, kind), strconv.Itoa(hc)
	}
	// Context expiry before or during the call.
	if errors.Is(err, context.DeadlineExceeded) {
		return errclass.Retryable, codeName(codes.DeadlineExceeded)
	}
	if errors.Is(err, context.Canceled) {
		return errclass.Permanent, codeName(codes.Canceled)
	}
	// gRPC (Monitoring, Vertex AI, long-running operations).
	if st, ok := status.FromError(err); ok && st.Code() != codes.OK {
		if st.Code() == codes.FailedPrecondition && kind == conditional && mentionsEtag(st.Message()) {
			return errclass.Conflict, codeName(st.Code())
		}
		return classGRPC(st.Code(), kind), codeName(st.Code())
	}
	return errclass.Permanent, "UNKNOWN"
}

// codeName is the canonical upper-case name of a gRPC code ("UNAVAILABLE").
func codeName(c codes.Code) string {
	switch c {
	case codes.OK:
		return "OK"
	case codes.Canceled:
		return "CANCELLED"
	case codes.Unknown:
		return "UNKNOWN"
	case codes.InvalidArgument:
		return "INVALID_ARGUMENT"
	case codes.DeadlineExceeded:
		return "DEADLINE_EXCEEDED"
	case codes.NotFound:
		return "NOT_FOUND"
	case codes.AlreadyExists:
		return "ALREADY_EXISTS"
	case codes.PermissionDenied:
		return "PERMISSION_DENIED"
	case codes.ResourceExhausted:
		return "RESOURCE_EXHAUSTED"
	case codes.FailedPrecondition:
		return "FAILED_PRECONDITION"
	case codes.Aborted:
		return "ABORTED"
	case codes.OutOfRange:
		return "OUT_OF_RANGE"
	case codes.Unimplemented:
		return "UNIMPLEMENTED"
	case codes.Internal:
		return "INTERNAL"
	case codes.Unavailable:
		return "UNAVAILABLE"
	case codes.DataLoss:
		return "DATA_LOSS"
	case codes.Unauthenticated:
		return "UNAUTHENTICATED"
	}
	return c.String()
}

func classGRPC(c codes.Code, _ callKind) errclass.Kind {
	switch c {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Internal:
		return errclass.Retryable
	case codes.ResourceExhausted:
		return errclass.Quota
	case codes.Aborted:
		return errclass.Conflict
	case codes.FailedPrecondition:
		// Not a concurrency conflict (classOf handles one that names the etag): the condition
		// (e.g. an operation in progress) is reported, and the next iteration tries again.
		return errclass.Permanent
	case codes.NotFound:
		return errclass.NotFound
	}
	return errclass.Permanent
}

// mentionsEtag reports whether a FAILED_PRECONDITION message is about the etag.
func mentionsEtag(msg string) bool { return strings.Contains(strings.ToLower(msg), "etag") }

func classHTTP(hc int, _ callKind) errclass.Kind {
	switch {
	case hc == http.StatusTooManyRequests:
		return errclass.Quota
	case hc == http.StatusPreconditionFailed, hc == http.StatusConflict:
		return errclass.Conflict
	case hc == http.StatusNotFound:
		return errclass.NotFound
	case hc == http.StatusRequestTimeout, hc >= 500:
		return errclass.Retryable
	}
	return errclass.Permanent
}

// httpCode returns the HTTP status carried by err, or 0 when it carries none.
func httpCode(err error) int {
	var ae *apierror.APIError
	if errors.As(err, &ae) {
		if hc := ae.HTTPCode(); hc > 0 {
			return hc
		}
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) && ge.Code > 0 {
		return ge.Code
	}
	return 0
}

// transient reports whether err is worth an immediate, bounded retry inside one call.
func transient(err error) bool {
	if hc := httpCode(err); hc > 0 {
		return hc == http.StatusServiceUnavailable || hc == http.StatusGatewayTimeout ||
			hc == http.StatusBadGateway
	}
	return status.Code(err) == codes.Unavailable
}

// RetryPolicy bounds the in-call retry of transient errors (UNAVAILABLE, 502/503/504). The
// zero value means no retry. It replaces the clients' defaults (ListTimeSeries: UNAVAILABLE for
// up to 90 s; Compute Get: 503/504 for up to 10 min); the context deadline bounds it further.
type RetryPolicy struct {
	// Retries after the first attempt.
	Retries int
	// Initial backoff; doubled on each retry, capped at Max.
	Initial, Max time.Duration
}

// DefaultRetry: two retries, 100 ms then 200 ms.
var DefaultRetry = RetryPolicy{Retries: 2, Initial: 100 * time.Millisecond, Max: time.Second}

// callOption returns the gax call option that applies p, overriding the client's default.
func (p RetryPolicy) callOption() gax.CallOption {
	return gax.WithRetry(func() gax.Retryer {
		if p.Retries <= 0 {
			return nil // gax: no retry
		}
		return &boundedRetryer{p: p, next: p.Initial}
	})
}

type boundedRetryer struct {
	p    RetryPolicy
	n    int
	next time.Duration
}

func (r *boundedRetryer) Retry(err error) (time.Duration, bool) {
	if r.n >= r.p.Retries || !transient(err) {
		return 0, false
	}
	r.n++
	d := r.next
	if d <= 0 {
		d = 100 * time.Millisecond
	}
	r.next = d * 2
	if r.p.Max > 0 && r.next > r.p.Max {
		r.next = r.p.Max
	}
	return d, true
}

// withTimeout bounds ctx by d (when d > 0); a shorter deadline already on ctx wins.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		d = defaultTimeout
	}
	return context.WithTimeout(ctx, d)
}

// defaultTimeout applies to any call whose adapter has no timeout configured.
const defaultTimeout = 15 * time.Second

// Classify wraps a raw cloud client error of a read call with its errclass kind and code, as
// the adapters do (for callers outside pkg/gcp that call a client directly, e.g. preflight).
func Classify(err error, msg string) error { return classify(err, read, msg) }
