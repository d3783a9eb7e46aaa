package console

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"net/http"
	"time"
)

// view is what every page gets: the user (nil on the login page), the
// current section for the menu, and the page's own data.
type view struct {
	User, Role, CSRF, Section string
	Admin                     bool
	Data                      any
}

var funcs = template.FuncMap{
	// letters are the service letters and L, the mobile links' letter.
	"letters": func() []string { return []string{"S", "F", "V", "C", "T", "N", "L"} },
	"when": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return ""
			}
			return v.Format("2006-01-02 15:04:05")
		case *time.Time:
			if v == nil || v.IsZero() {
				return ""
			}
			return v.Format("2006-01-02 15:04:05")
		}
		return ""
	},
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		d := time.Since(t).Round(time.Second)
		switch {
		case d < time.Minute:
			return fmt.Sprintf("%ds", int(d.Seconds()))
		case d < time.Hour:
			return fmt.Sprintf("%dm", int(d.Minutes()))
		case d < 48*time.Hour:
			return fmt.Sprintf("%dh", int(d.Hours()))
		}
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	},
}

// render executes a page into a buffer first, so a template error is a 500
// rather than half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, code int, page string, data any) {
	v := view{Section: page, Data: data}
	if s != nil {
		v.User, v.Role, v.CSRF, v.Admin = s.user, s.role, s.csrf, s.role == RoleAdmin
	}
	c.execute(w, code, page, "layout.html", v)
}

// fragment renders one named block of a page alone (the traffic rows).
func (c *Console) fragment(w http.ResponseWriter, page, block string, v view) {
	c.execute(w, http.StatusOK, page, block, v)
}

func (c *Console) execute(w http.ResponseWriter, code int, page, name string, v view) {
	t := c.pages[page]
	var b bytes.Buffer
	if t == nil {
		http.Error(w, "no page "+page, http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&b, name, v); err != nil {
		c.cfg.Log.Error("console: page", "page", page, "err", err)
		http.Error(w, "the page could not be drawn; the log says why", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(b.Bytes()) //nolint:errcheck // the client went away
}

// problem is a page that says what went wrong in words.
func (c *Console) problem(w http.ResponseWriter, r *http.Request, s *session, code int, msg string) {
	c.render(w, r, s, code, "problem", map[string]any{"Code": code, "Status": http.StatusText(code), "Message": msg})
}

// internal logs err and shows a page without it: Go and SQL error text is for
// the log.
func (c *Console) internal(w http.ResponseWriter, r *http.Request, s *session, what string, err error) {
	c.cfg.Log.Warn("console: "+what, "err", err, "user", s.user)
	c.problem(w, r, s, http.StatusServiceUnavailable, "Could not "+what+" just now (the database or the spool did not answer); the log has the details.")
}

// audit records a change made in the console with its user: in the admin
// action table and the log. A failure to record is logged, not shown: the
// change itself happened.
func (c *Console) audit(ctx context.Context, s *session, action, target, detail string) {
	c.cfg.Log.Info("console: admin action", "user", s.user, "action", action, "target", target, "detail", detail)
	_, err := c.cfg.Store.DB.ExecContext(context.WithoutCancel(ctx),
		"INSERT INTO smsrouter_admin_action (at, user, action, target, detail) VALUES (?, ?, ?, ?, ?)",
		c.cfg.Now().UnixMilli(), s.user, action, clip(target, 60), detail)
	if err != nil {
		c.cfg.Log.Error("console: admin action not recorded", "user", s.user, "action", action, "target", target, "err", err)
	}
}
