package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"smsrouter/channels"
)

// try is one way tried for a message, as the journal shows it (detail "tries").
type try struct {
	Way       int    `json:"way"`
	Letter    string `json:"letter"`
	Extension string `json:"extension,omitempty"`
	Outcome   string `json:"outcome"` // delivered, deferred, failed, skipped, bounced…
	Cause     string `json:"cause,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// deliverWays tries the recipient's ways in order, from the one the message is
// due on (claim.way): the next way takes over when one fails by its own
// evidence (failOver). A number without further ways is delivered exactly as
// before ways existed, and its journal detail does not change.
func (r *Router) deliverWays(ctx context.Context, j *job, e Entry) {
	start := min(j.claim.way, len(e.Further))
	for k := start; k <= len(e.Further); k++ {
		w, _ := e.Way(k)
		last := k == len(e.Further)
		tries := 0
		if k == j.claim.way {
			tries = j.claim.tries
		}
		if w.Problem != "" {
			r.log.Warn("way unusable; skipped", "id", j.claim.id, "to", j.msg.DA, "way", k, "problem", w.Problem)
			j.tried(try{Way: k, Letter: string(w.Letter), Outcome: "skipped", Reason: w.Problem})
			if last {
				r.settleUndeliverable(j, StateBounced, "unreachable", w.Problem)
			}
			continue
		}
		err := r.deliverOn(ctx, j, w, tries, last)
		t := try{Way: k, Letter: string(w.Letter), Extension: w.Extension, Outcome: string(j.state), Cause: channels.CauseOf(err)}
		switch {
		case err != nil:
			t.Outcome, t.Reason = "failed", err.Error()
			r.log.Info("way failed; trying the next", "id", j.claim.id, "to", j.msg.DA, "way", k, "letter", string(w.Letter), "err", err)
		case j.state == StateDeferred:
			t.Reason, t.Cause = j.errText, j.cause
			if k != j.claim.way {
				j.claim.tries = 0
			}
			j.claim.way = k
			j.claim.tries++
		case j.state != StateDelivered:
			t.Reason = j.errText
		}
		if j.state == StateDelivered && tries > 0 {
			j.fact("way_tries", tries)
		}
		if len(e.Further) > 0 {
			j.tried(t)
			j.fact("way", k)
			j.fact("ways", e.WaysText())
		}
		if err == nil {
			return
		}
	}
}

// failOver reports whether a failure on a way that is not the last one hands
// the message to the next way rather than settle it on this one: a definite
// failure does, and so does a temporary one whose cause's retries on this way
// (RetryRules) are used up. A failure without a cause (a disk, a database) is
// no evidence against the way and keeps the message on it.
func (r *Router) failOver(err error, tries int) bool {
	if errors.Is(err, channels.ErrNoService) || channels.IsPermanent(err) {
		return true
	}
	cause := channels.CauseOf(err)
	if cause == "" {
		return false
	}
	return tries >= r.cfg.Retry[cause].Attempts
}

func (j *job) tried(t try) {
	list, _ := j.facts["tries"].([]try)
	j.fact("tries", append(list, t))
}

// wayOf reads which way a journal row's message was delivered on, how often
// that way was tried, and how many ways its recipient had.
func wayOf(detail string) (way, tries, ways int) {
	d := detailMap(detail)
	if v, ok := d["way"].(float64); ok {
		way = int(v)
	}
	if v, ok := d["way_tries"].(float64); ok {
		tries = int(v)
	}
	ways = 1
	if s, ok := d["ways"].(string); ok && s != "" {
		ways = (len(s) + 1) / 2
	}
	return way, tries, ways
}

// detailMap reads a journal row's detail; nil when it is not a JSON object.
func detailMap(detail string) map[string]any {
	var d map[string]any
	if detail != "" && json.Unmarshal([]byte(detail), &d) != nil {
		return nil
	}
	return d
}

func describeWay(letter string) string {
	switch letter {
	case "S":
		return "SMS"
	case "F":
		return "fax"
	case "V":
		return "voice call"
	case "T":
		return "SIP message"
	}
	return fmt.Sprintf("letter %s", letter)
}
