package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client asks one node's API. It is safe for concurrent use.
type Client struct {
	addr string
	http *http.Client
}

// NewClient returns a client for the API at addr: host:port or unix:PATH.
func NewClient(addr string) *Client {
	tr := &http.Transport{}
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
	}
	return &Client{addr: addr, http: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

func (c *Client) url(path string) string {
	if strings.HasPrefix(c.addr, "unix:") {
		return "http://unix" + path
	}
	return "http://" + c.addr + path
}

// Get fetches path and decodes its JSON into v.
func (c *Client) Get(path string, v any) error {
	resp, err := c.http.Get(c.url(path))
	if err != nil {
		return fmt.Errorf("asking dnsd at %s: %w", c.addr, err)
	}
	return decode(resp, v)
}

// Post sends body as JSON to path and decodes the answer into v.
func (c *Client) Post(path string, body, v any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encoding request: %w", err)
	}
	resp, err := c.http.Post(c.url(path), "application/json", bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("asking dnsd at %s: %w", c.addr, err)
	}
	return decode(resp, v)
}

// Tasks fetches the tasks of service name.
func (c *Client) Tasks(name string) ([]TaskView, error) {
	var out []TaskView
	err := c.Get("/v1/services/"+url.PathEscape(name)+"/tasks", &out)
	return out, err
}

func decode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e apiError
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("api answered %s", resp.Status)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decoding answer: %w", err)
	}
	return nil
}
