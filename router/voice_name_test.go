package router

import (
	"regexp"
	"strings"
	"testing"
)

// FuzzVoiceName keeps validVoiceName equal to render/voice's rule, written as
// the regexp both replaced.
func FuzzVoiceName(f *testing.F) {
	rule := regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_+.-]{0,63}$`)
	for _, s := range []string{"pl", "en-gb+f3", "-x", "", ".", strings.Repeat("b", 64), strings.Repeat("b", 65), "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validVoiceName(s), rule.MatchString(s); got != want {
			t.Fatalf("validVoiceName(%q) = %v, the rule says %v", s, got, want)
		}
	})
}
