package router

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// validVoiceName restricts a stored language or voice: the voice channel hands
// them to a TTS engine as argv elements, so they must never look like an option.
// render/voice applies the same rule (its ValidName; router does not import
// renderers); checking here refuses a bad value when an admin sets it instead
// of when a message arrives: 1 to 64 of [A-Za-z0-9_+.-], the first not + . or -.
// A loop, not a regexp, whose 63-fold repetition cost every start to compile.
func validVoiceName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '_':
		case (c == '+' || c == '.' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// ErrBadVoiceOption is returned by SetVoiceOptions for a language or voice name
// that no engine could take.
var ErrBadVoiceOption = errors.New("bad voice option")

// VoiceOptions returns the language and voice a number's messages are spoken in
// (letter V), from the smsrouter_number_voice side table. A number without a row
// gets "", "", nil: the voice channel then uses its configured default. Any
// database failure wraps ErrDirectoryUnavailable, so the message is retried, not
// bounced.
func (s *Store) VoiceOptions(ctx context.Context, number string) (lang, voice string, err error) {
	err = s.DB.QueryRowContext(ctx,
		`SELECT Language, Voice FROM smsrouter_number_voice WHERE Account = ?`, number).Scan(&lang, &voice)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", "", nil
	case err != nil:
		// Most likely cause after an upgrade: the schema is older than the binary.
		return "", "", fmt.Errorf("%w: voice options of %s (has `smsrouter migrate` run?): %v", ErrDirectoryUnavailable, number, err)
	}
	// Admins may edit the table by hand: tolerate blanks, ignore what an engine
	// could not take rather than fail every call to this number.
	lang, voice = strings.TrimSpace(lang), strings.TrimSpace(voice)
	if lang != "" && !validVoiceName(lang) {
		lang = ""
	}
	if voice != "" && !validVoiceName(voice) {
		voice = ""
	}
	return lang, voice, nil
}

// SetVoiceOptions stores the language (e.g. "pl", "en-gb") and the engine voice
// for a number; empty strings mean the configured default, and both empty
// removes the number's row.
func (s *Store) SetVoiceOptions(ctx context.Context, number, lang, voice string) error {
	for _, v := range []struct{ what, val string }{{"language", lang}, {"voice", voice}} {
		if v.val != "" && !validVoiceName(v.val) {
			return fmt.Errorf("%w: %s %q: want letters, digits and _+.- (not starting with - . +), at most 64", ErrBadVoiceOption, v.what, v.val)
		}
	}
	if lang == "" && voice == "" {
		if _, err := s.DB.ExecContext(ctx, `DELETE FROM smsrouter_number_voice WHERE Account = ?`, number); err != nil {
			return fmt.Errorf("clear voice options of %s: %w", number, err)
		}
		return nil
	}
	var q string
	if s.Dialect == "mysql" {
		q = `INSERT INTO smsrouter_number_voice (Account, Language, Voice) VALUES (?, ?, ?)
		     ON DUPLICATE KEY UPDATE Language = VALUES(Language), Voice = VALUES(Voice)`
	} else {
		q = `INSERT INTO smsrouter_number_voice (Account, Language, Voice) VALUES (?, ?, ?)
		     ON CONFLICT(Account) DO UPDATE SET Language = excluded.Language, Voice = excluded.Voice`
	}
	if _, err := s.DB.ExecContext(ctx, q, number, lang, voice); err != nil {
		return fmt.Errorf("set voice options of %s: %w", number, err)
	}
	return nil
}
