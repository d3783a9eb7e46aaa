package numplan

import (
	"strings"
	"testing"
)

// pl is a plan with a trunk prefix, as the example numbers use it.
var pl = Plan{CountryCode: "48", InternationalPrefix: "00", NationalPrefix: "0", ExtensionLength: 4}

func TestNormalize(t *testing.T) {
	did := pl
	did.DIDPrefix = "+4822123"
	noTrunk := Plan{CountryCode: "48", InternationalPrefix: "00", ExtensionLength: 4}
	plusExt := pl
	plusExt.DIDPrefix = "+"
	for _, c := range []struct {
		name string
		p    Plan
		in   string
		want string
	}{
		{"off: as written", Plan{}, "0048221234567", "0048221234567"},
		{"off: plus kept", Plan{}, "+1000", "+1000"},
		{"international", pl, "+48221234567", "+48221234567"},
		{"international prefix", pl, "0048221234567", "+48221234567"},
		{"national prefix", pl, "0221234567", "+48221234567"},
		{"extension", pl, "1000", "1000"},
		{"short code", pl, "112", "112"},
		{"plus 1000 is not extension 1000", pl, "+1000", "+1000"},
		{"unless the plan says so", plusExt, "+1000", "1000"},
		{"other country", pl, "004915112345678", "+4915112345678"},
		{"local number of other shape", pl, "5551001", "5551001"},
		{"DID range to extension", did, "+48221231001", "1001"},
		{"DID by national form", did, "0221231001", "1001"},
		{"DID range, wrong length stays full", did, "+482212310011", "+482212310011"},
		{"outside the DID range", did, "+48221241001", "+48221241001"},
		{"no trunk prefix: national by length", noTrunk, "601234567", "+48601234567"},
		{"no trunk prefix: extension", noTrunk, "1001", "1001"},
		{"too long stays as written", pl, "00123456789012345678901", "00123456789012345678901"},
		{"not a number", pl, "../x", "../x"},
		{"empty", pl, "", ""},
		{"bare plus", pl, "+", "+"},
		{"prefix alone", pl, "00", "00"},
	} {
		if got := c.p.Normalize(c.in); got != c.want {
			t.Errorf("%s: Normalize(%q) = %q, want %q", c.name, c.in, got, c.want)
		}
	}
}

func TestSameSubscriber(t *testing.T) {
	forms := []string{"+48221234567", "0048221234567", "0221234567"}
	for _, f := range forms {
		if got := pl.Normalize(f); got != "+48221234567" {
			t.Errorf("%s → %s", f, got)
		}
	}
}

func TestShownRoundTrips(t *testing.T) {
	nat := pl
	nat.Show = ShowNational
	for _, c := range []struct {
		p         Plan
		in, shown string
	}{
		{pl, "+48601234567", "+48601234567"},
		{nat, "+48601234567", "0601234567"},
		{nat, "+4915112345678", "004915112345678"},
		{nat, "1001", "1001"},
		{Plan{}, "+48601234567", "+48601234567"},
	} {
		got := c.p.Shown(c.in)
		if got != c.shown {
			t.Errorf("Shown(%q) = %q, want %q", c.in, got, c.shown)
		}
		if back := c.p.Normalize(got); back != c.in {
			t.Errorf("Normalize(Shown(%q)) = %q: a reply would go elsewhere", c.in, back)
		}
	}
}

func TestPresented(t *testing.T) {
	did := pl
	did.DIDPrefix = "+4822123"
	for _, c := range []struct{ in, want string }{
		{"1001", "+48221231001"},
		{"100", "100"},
		{"+48601234567", "+48601234567"},
	} {
		if got := did.Presented(c.in); got != c.want {
			t.Errorf("Presented(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := pl.Presented(c.in); got != c.in {
			t.Errorf("no DID range: Presented(%q) = %q", c.in, got)
		}
	}
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		p    Plan
		want string
	}{
		{Plan{}, ""},
		{pl, ""},
		{Plan{DIDPrefix: "+48"}, "needs country_code"},
		{Plan{CountryCode: "4x", InternationalPrefix: "00", NationalPrefix: "0"}, "country_code"},
		{Plan{CountryCode: "48", InternationalPrefix: "", NationalPrefix: "0"}, "international_prefix is empty"},
		{Plan{CountryCode: "48", InternationalPrefix: "0", NationalPrefix: "0"}, "the same"},
		{Plan{CountryCode: "48", InternationalPrefix: "00"}, "extension_length"},
		{Plan{CountryCode: "48", InternationalPrefix: "00", NationalPrefix: "0", Show: "local"}, "show_senders"},
		{Plan{CountryCode: "48", InternationalPrefix: "00", NationalPrefix: "0", DIDPrefix: "4822"}, "did_prefix"},
	} {
		err := c.p.Check()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.p, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: err %v, want %q", c.p, err, c.want)
		}
	}
}

func TestExplain(t *testing.T) {
	did := pl
	did.DIDPrefix = "+4822123"
	for _, c := range []struct {
		p        Plan
		in, want string
	}{
		{Plan{}, "0601", "no numbering plan"},
		{pl, "0601234567", "national prefix 0"},
		{pl, "1001", "local"},
		{did, "0048221231001", "extension 1001"},
	} {
		if got := c.p.Explain(c.in); !strings.Contains(got, c.want) {
			t.Errorf("Explain(%q) = %q, want %q in it", c.in, got, c.want)
		}
	}
}

// FuzzNormalize: the canonical form is stable, a shown number reads back as
// itself, and nothing that was not a number becomes one.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"+48221234567", "0048221234567", "0221234567", "1000", "+1000", "", "+", "00", "0", "../../x"} {
		f.Add(s, false)
	}
	did := pl
	did.DIDPrefix = "+4822123"
	did.Show = ShowNational
	f.Fuzz(func(t *testing.T, n string, useDID bool) {
		p := pl
		if useDID {
			p = did
		}
		c := p.Normalize(n)
		if again := p.Normalize(c); again != c {
			t.Fatalf("Normalize not stable: %q → %q → %q", n, c, again)
		}
		if c != n && (!plausible(c) || len(c) > MaxLen) {
			t.Fatalf("Normalize(%q) = %q is not a number", n, c)
		}
		if s := p.Shown(c); p.Normalize(s) != c {
			t.Fatalf("Shown(%q) = %q reads back as %q", c, s, p.Normalize(s))
		}
	})
}
