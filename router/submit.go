package router

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
	"unicode/utf8"

	"smsrouter/asteriskconf/smsq"
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
	id := NewID(now)
	if err := submitAs(inbox, id, from, to, text, now); err != nil {
		return "", err
	}
	return id, nil
}

func submitAs(inbox, id, from, to, text string, now time.Time) error {
	if err := CheckNumber("sender", from); err != nil {
		return err
	}
	if err := CheckNumber("recipient", to); err != nil {
		return err
	}
	if !utf8.ValidString(text) {
		return fmt.Errorf("text is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(text); n > MaxSubmitText {
		return fmt.Errorf("text has %d characters; at most %d fit in one concatenated SMS", n, MaxSubmitText)
	}
	data, err := (&smsq.Message{OA: from, DA: to, SCTS: now, DCS: -1, MR: -1, Text: text}).Marshal()
	if err != nil {
		return fmt.Errorf("queue message: new message %s→%s: %w", from, to, err)
	}
	return placeInbox(inbox, channels.SpoolName(to, id, 0), data, false)
}

// placeInbox writes a spool file into the inbox under a dot name the router
// skips, then renames it into place, so no reader ever sees half of it.
func placeInbox(inbox, name string, data []byte, sync bool) error {
	tmp := filepath.Join(inbox, ".smsrouter-tmp-"+name)
	if err := writeNew(tmp, data, 0o640, sync); err != nil {
		return fmt.Errorf("queue message: %w", err)
	}
	if err := renameNoReplace(tmp, filepath.Join(inbox, name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("queue message: %w", err)
	}
	if sync {
		if err := syncDir(inbox); err != nil {
			return fmt.Errorf("queue message: %w", err)
		}
	}
	return nil
}

// seenDir holds one entry per message an ingress queued with SubmitOnce, named
// by the ingress's key for it. Each is a hard link to the queued spool file as
// it was written, which is what makes "queued" and "seen" one step.
func seenDir(work string) string { return filepath.Join(work, "seen") }

// SubmitOnce queues msg (a spool file's content, for recipient to) unless a
// message with the same key was queued before, and reports which. It is how a
// mobile link's ingress stores what the network hands it before telling the
// network so: after a crash between the two, the network hands the message
// over again, and the key (sender, time stamp, reference, text…) says it is
// already queued.
//
// Queueing and remembering the key are one atomic step: the file is written
// under a dot name, hard-linked as the key (which fails if the key exists),
// and only then renamed into the inbox. A crash after the link and before the
// rename leaves the dot file, which the next SubmitOnce with the key finds
// and renames in: nothing lost, nothing queued twice.
func SubmitOnce(work, key, to string, msg []byte, sync bool, now time.Time) (id string, dup bool, err error) {
	if !validKey(key) {
		return "", false, fmt.Errorf("submit once: key %q is not a file name", key)
	}
	if err := CheckNumber("recipient", to); err != nil {
		return "", false, err
	}
	inbox, seen := InboxDir(work), seenDir(work)
	if err := os.MkdirAll(seen, 0o770); err != nil {
		return "", false, fmt.Errorf("submit once: %w", err)
	}
	if err := os.MkdirAll(inbox, 0o770); err != nil {
		return "", false, fmt.Errorf("submit once: %w", err)
	}
	marker := filepath.Join(seen, key)
	tmp := filepath.Join(inbox, ".once-"+key)
	place := func() (string, error) {
		id := NewID(now)
		if err := renameNoReplace(tmp, filepath.Join(inbox, channels.SpoolName(to, id, 0))); err != nil {
			return "", fmt.Errorf("submit once: %w", err)
		}
		if sync {
			if err := syncAll([]string{inbox, seen}); err != nil {
				return "", fmt.Errorf("submit once: %w", err)
			}
		}
		return id, nil
	}
	for range 3 {
		if mi, err := os.Lstat(marker); err == nil {
			if ti, err := os.Lstat(tmp); err == nil && os.SameFile(mi, ti) {
				// Linked but never renamed in: finish what a crash interrupted.
				id, err := place()
				return id, false, err
			}
			return "", true, nil
		}
		os.Remove(tmp) // written before a crash but never linked: never announced
		if err := writeNew(tmp, msg, 0o640, sync); err != nil {
			return "", false, fmt.Errorf("submit once: %w", err)
		}
		if err := os.Link(tmp, marker); err != nil {
			os.Remove(tmp)
			if errors.Is(err, os.ErrExist) {
				continue // a twin got there first: look again
			}
			return "", false, fmt.Errorf("submit once: %w", err)
		}
		id, err := place()
		return id, false, err
	}
	return "", true, nil
}

// ForgetSeen drops a key SubmitOnce remembered: for a network that never hands
// over a message again once told it is stored (an SMSC after deliver_sm_resp),
// so that the same text sent again later is a new message.
func ForgetSeen(work, key string) {
	if validKey(key) {
		os.Remove(filepath.Join(seenDir(work), key))
	}
}

// CleanSeen forgets keys remembered before cut.
func CleanSeen(work string, cut time.Time) error {
	entries, err := os.ReadDir(seenDir(work))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("clean seen: %w", err)
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.ModTime().Before(cut) {
			os.Remove(filepath.Join(seenDir(work), e.Name()))
		}
	}
	return nil
}

func validKey(k string) bool {
	if k == "" || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Quarantine puts data an ingress cannot queue (an unreadable PDU) into the
// rejected folder with the reason beside it, like a malformed spool file, and
// returns where.
func Quarantine(work, name string, data []byte, reason string) (string, error) {
	dir := filepath.Join(work, "rejected")
	if err := os.MkdirAll(dir, 0o770); err != nil {
		return "", fmt.Errorf("quarantine: %w", err)
	}
	base := safeName(name)
	dst := filepath.Join(dir, base)
	for i := 1; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
			break
		}
		dst = filepath.Join(dir, fmt.Sprintf("%s~%d", base, i))
	}
	if err := os.WriteFile(dst+".reason", []byte(reason+"\n"), 0o640); err != nil {
		return "", fmt.Errorf("quarantine: %w", err)
	}
	if err := writeNew(dst, data, 0o640, false); err != nil {
		return "", fmt.Errorf("quarantine: %w", err)
	}
	return dst, nil
}
