package console

import (
	"context"
	"net/http"
	"time"
)

// healthTimeout bounds one run of the checks: a dead AMI must not hang the page.
const healthTimeout = 10 * time.Second

func (c *Console) healthPage(w http.ResponseWriter, r *http.Request, s *session) {
	var fs []Finding
	if c.cfg.Health != nil {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		fs = c.cfg.Health(ctx)
		cancel()
	}
	worst := "ok"
	for _, f := range fs {
		switch {
		case f.Level == "fail":
			worst = "fail"
		case f.Level == "warn" && worst == "ok":
			worst = "warn"
		}
	}
	c.render(w, r, s, http.StatusOK, "health", map[string]any{"Checks": fs, "Worst": worst, "At": c.cfg.Now().In(c.cfg.Location)})
}
