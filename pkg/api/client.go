package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/drwatchd/drwatchd/pkg/failover"
)

// Client drives a running daemon through its admin API (GET /v1/status, POST
// /v1/services/{service}/{verb}) with a bearer token.
type Client struct {
	// Base URL of the admin listener, e.g. http://127.0.0.1:8081.
	Base  string
	Token string
	// Client defaults to one with a 10 s timeout.
	Client *http.Client
}

var defaultClient = &http.Client{Timeout: 10 * time.Second}

// Status reads GET /v1/status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// Submit posts a command; a refusal by the server (4xx) is an error carrying its message.
func (c *Client) Submit(ctx context.Context, service string, verb failover.Verb, cmd Command) (CommandResult, error) {
	var res CommandResult
	err := c.do(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(service)+"/"+url.PathEscape(string(verb)), cmd, &res)
	return res, err
}

// Result reads GET /v1/commands/{id}: a submitted command's outcome.
func (c *Client) Result(ctx context.Context, id string) (CommandResult, error) {
	var res CommandResult
	err := c.do(ctx, http.MethodGet, "/v1/commands/"+url.PathEscape(id), nil, &res)
	return res, err
}

// Wait polls a command's result every poll until it is no longer pending or ctx ends (then the
// last result and ctx's error).
func (c *Client) Wait(ctx context.Context, id string, poll time.Duration) (CommandResult, error) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		res, err := c.Result(ctx, id)
		if err == nil && res.Status != CommandPending {
			return res, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return res, err
		case <-t.C:
		}
	}
}

// Journal reads GET /journal with query (service, since, until, limit, id). It is served by the
// public listener, so Base is the public address (e.g. http://127.0.0.1:8080) and no token is
// needed. An answer other than 200 is an error carrying the server's message.
func (c *Client) Journal(ctx context.Context, query url.Values) (Journal, error) {
	var out Journal
	path := "/journal"
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	err := c.do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.Base, "/")+path, rd)
	if err != nil {
		return err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.Client
	if hc == nil {
		hc = defaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if resp.StatusCode >= 300 {
		var res CommandResult
		if json.Unmarshal(raw, &res) == nil && res.Message != "" {
			return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, res.Message)
		}
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return &HTTPError{Code: resp.StatusCode, Msg: fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, e.Error)}
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(raw)))
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: decode: %w", method, path, err)
	}
	return nil
}

// HTTPError is an error answer of the public listener ({"error": "..."}) with its status code.
type HTTPError struct {
	Code int
	Msg  string
}

func (e *HTTPError) Error() string { return e.Msg }
