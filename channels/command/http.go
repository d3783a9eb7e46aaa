package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// http calls the rule's URL. Network errors, timeouts and 5xx answers are
// temporary (errTemporary); 4xx answers and bad templates are definite.
func (c *Channel) http(ctx context.Context, r *rule, d *Data) (string, int, error) {
	u, err := render(r.url, d)
	if err != nil {
		return "", 0, fmt.Errorf("url: %w", err)
	}
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return "", 0, fmt.Errorf("url %q is not an http(s) URL", redactURL(u))
	}
	fields := map[string]string{}
	names := make([]string, 0, len(r.fields))
	for k, t := range r.fields {
		v, err := render(t, d)
		if err != nil {
			return "", 0, fmt.Errorf("field %s: %w", k, err)
		}
		fields[k] = v
		names = append(names, k)
	}
	sort.Strings(names)

	var body io.Reader
	contentType := ""
	if r.Method == "GET" {
		if len(fields) > 0 {
			q := parsed.Query()
			for _, k := range names {
				q.Set(k, fields[k])
			}
			parsed.RawQuery = q.Encode()
		}
	} else if r.Body == "json" {
		b, err := json.Marshal(fields)
		if err != nil {
			return "", 0, fmt.Errorf("json body: %w", err)
		}
		body, contentType = bytes.NewReader(b), "application/json"
	} else {
		form := url.Values{}
		for _, k := range names {
			form.Set(k, fields[k])
		}
		body, contentType = strings.NewReader(form.Encode()), "application/x-www-form-urlencoded"
	}

	ctx, cancel := context.WithTimeout(ctx, r.Timeout.Duration)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, parsed.String(), body)
	if err != nil {
		return "", 0, fmt.Errorf("request: %w", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("User-Agent", "smsrouter")
	for k, t := range r.headers {
		v, err := render(t, d)
		if err != nil {
			return "", 0, fmt.Errorf("header %s: %w", k, err)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return "", 0, fmt.Errorf("header %s: value contains a line break", k)
		}
		req.Header.Set(k, v)
	}
	resp, err := c.env.HTTPClient.Do(req)
	if err != nil {
		// The URL may carry a secret (Telegram's bot token): keep it out of logs.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", 0, fmt.Errorf("%s %s: %v: %w", r.Method, redactURL(parsed.String()), err, errTemporary)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, int64(r.MaxOutput)))
	if err != nil {
		return "", resp.StatusCode, fmt.Errorf("%s %s: reading the answer: %v: %w", r.Method, redactURL(parsed.String()), err, errTemporary)
	}
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		return "", resp.StatusCode, fmt.Errorf("%s %s: %s: %w", r.Method, redactURL(parsed.String()), resp.Status, errTemporary)
	case resp.StatusCode >= 300:
		return "", resp.StatusCode, fmt.Errorf("%s %s: %s", r.Method, redactURL(parsed.String()), resp.Status)
	}
	return string(data), resp.StatusCode, nil
}

// redactURL keeps scheme and host only: paths and queries of webhook URLs often
// hold tokens.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "(url)"
	}
	return u.Scheme + "://" + u.Host + "/…"
}
