package router

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
	"unicode/utf8"

	"smsrouter/channels"
)

// MaxSubmitText bounds a message queued by Submit: 255 concatenated parts of 153
// GSM characters is the most any SMS route can carry.
const MaxSubmitText = 255 * 153

// Submit queues a message as if an Asterisk SMS had been received from `from` for
// `to` (smsrouter send, FastAGI postsms, the HTTP API). It returns the id the
// journal will know it by.
func (r *Router) Submit(from, to, text string) (string, error) {
	return SubmitTo(r.l.inbox, from, to, text, r.now())
}

// SubmitTo writes the message into an inbox folder (InboxDir): under a dot name the
// router skips, then renamed into place, so no reader ever sees half of it.
func SubmitTo(inbox, from, to, text string, now time.Time) (string, error) {
	if err := CheckNumber("sender", from); err != nil {
		return "", err
	}
	if err := CheckNumber("recipient", to); err != nil {
		return "", err
	}
	if !utf8.ValidString(text) {
		return "", fmt.Errorf("text is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(text); n > MaxSubmitText {
		return "", fmt.Errorf("text has %d characters; at most %d fit in one concatenated SMS", n, MaxSubmitText)
	}
	art, id, err := channels.NewMessage(inbox, from, to, text, 0, now)
	if err != nil {
		return "", fmt.Errorf("queue message: %w", err)
	}
	tmp := filepath.Join(inbox, ".smsrouter-tmp-"+id)
	if err := writeNew(tmp, art.Data, art.Mode, false); err != nil {
		return "", fmt.Errorf("queue message: %w", err)
	}
	if err := renameNoReplace(tmp, filepath.Join(inbox, art.Name)); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("queue message: %w", err)
	}
	return id, nil
}
