package voice

import (
	"regexp"
	"strings"
	"testing"
)

// nameRule is the rule ValidName implements, as the regexp it replaced.
var nameRule = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_+.-]{0,63}$`)

func TestValidName(t *testing.T) {
	for _, tt := range []struct {
		s    string
		want bool
	}{
		{"pl", true}, {"en-gb+f3", true}, {"kal_diphone", true}, {"_x", true}, {"9", true},
		{"", false}, {"-v", false}, {"+x", false}, {".x", false}, {"en gb", false}, {"pl\n", false},
		{"a/b", false}, {"é", false}, {strings.Repeat("a", 64), true}, {strings.Repeat("a", 65), false},
	} {
		if got := ValidName(tt.s); got != tt.want || got != nameRule.MatchString(tt.s) {
			t.Errorf("ValidName(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func FuzzValidName(f *testing.F) {
	for _, s := range []string{"pl", "en-gb+f3", "-x", "", strings.Repeat("b", 64), "a\x00", "a\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidName(s), nameRule.MatchString(s); got != want {
			t.Fatalf("ValidName(%q) = %v, the regexp says %v", s, got, want)
		}
	})
}
