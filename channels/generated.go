package channels

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"smsrouter/asteriskconf/smsq"
)

// MaxDepth bounds chains of generated messages (a notice about a reply about a
// notice…): a message this deep is never answered again.
const MaxDepth = 3

// NewID returns a message id: the time in Unix milliseconds and 40 random bits,
// e.g. "1795240000123-8f3a2c1d0e". It sorts by time and is safe as a file name.
func NewID(now time.Time) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%013d-%s", now.UnixMilli(), hex.EncodeToString(b[:]))
}

// ValidID accepts exactly the ids NewID makes, so an id read from a file name
// cannot smuggle a path into another one.
func ValidID(id string) bool {
	ms, r, ok := strings.Cut(id, "-")
	if !ok || len(ms) != 13 || len(r) != 10 {
		return false
	}
	for _, c := range ms {
		if c < '0' || c > '9' {
			return false
		}
	}
	for _, c := range r {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// SpoolName is the morx file name of a message smsrouter itself queues: the
// recipient first (as app_sms names its files), then our id and, for generated
// messages, how many generations deep it is: <to>.smsrouter-<id>[~<depth>].
func SpoolName(to, id string, depth int) string {
	if depth > 0 {
		return fmt.Sprintf("%s.smsrouter-%s~%d", to, id, depth)
	}
	return to + ".smsrouter-" + id
}

// ParseSpoolName recovers the id and depth from a SpoolName; ok is false for any
// other name (files written by Asterisk).
func ParseSpoolName(name string) (id string, depth int, ok bool) {
	i := strings.LastIndex(name, ".smsrouter-")
	if i < 0 {
		return "", 0, false
	}
	rest := name[i+len(".smsrouter-"):]
	if base, d, has := strings.Cut(rest, "~"); has {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || n > 99 {
			return "", 0, false
		}
		rest, depth = base, n
	}
	return rest, depth, true
}

// NewMessage builds a message that smsrouter originates — a notice, a command's
// reply, a forward — as a morx artefact, so that it is routed by its recipient's
// letter exactly like a message received from a phone.
func NewMessage(morxDir, from, to, text string, depth int, now time.Time) (Artefact, string, error) {
	id := NewID(now)
	data, err := (&smsq.Message{OA: from, DA: to, SCTS: now, DCS: -1, MR: -1, Text: text}).Marshal()
	if err != nil {
		return Artefact{}, "", fmt.Errorf("new message %s→%s: %w", from, to, err)
	}
	return Artefact{Kind: "message", Dir: morxDir, Name: SpoolName(to, id, depth), Data: data, Mode: 0o640}, id, nil
}
