package console

import (
	"encoding/json"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"smsrouter/asteriskconf/smsq"
)

// counterTexts are the edges of the S channel's split: the 160/153 and 70/67
// limits, escapes that cost two septets (and must not be cut), characters
// outside app_sms's table (ç fits, Ç does not), surrogate pairs, CR LF.
func counterTexts() []string {
	texts := []string{"", "a", strings.Repeat("a", 160), strings.Repeat("a", 161), strings.Repeat("a", 306), strings.Repeat("a", 307),
		strings.Repeat("€", 80), strings.Repeat("€", 81), "a" + strings.Repeat("[", 76) + "b", strings.Repeat("x", 152) + "{",
		strings.Repeat("ж", 70), strings.Repeat("ж", 71), strings.Repeat("ж", 134), strings.Repeat("ж", 135),
		strings.Repeat("😀", 35), strings.Repeat("😀", 36), "a" + strings.Repeat("😀", 33) + "b", "ç", "Ç", "line\r\nbreak",
		"\u00a0", "Grüße aus dem Browser: {braces} cost two septets each", strings.Repeat("a", 153*10), strings.Repeat("a", 153*10+1),
		strings.Repeat("ж", 67*10+1),
	}
	alphabet := []rune("aZ9 @£$¥èéùìòç\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà\f^{}\\[~]|€")
	others := []rune("ÇжŁ😀\u00a0中")
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300; i++ {
		n := r.IntN(700)
		var b strings.Builder
		for j := 0; j < n; j++ {
			b.WriteRune(alphabet[r.IntN(len(alphabet))])
		}
		if i%3 == 0 && n > 0 {
			b.WriteRune(others[r.IntN(len(others))])
		}
		texts = append(texts, b.String())
	}
	return texts
}

// TestCounterMatchesSplit runs the send page's counter (static/console.js) in
// Node on texts at every edge of the split and compares each answer with
// CountText, which is smsq.Split's: the browser's numbers are the S channel's.
func TestCounterMatchesSplit(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the counter's script is checked in the browser test only")
	}
	texts := counterTexts()
	const maxParts = 10
	in, _ := json.Marshal(texts)
	js, _ := filepath.Abs("static/console.js")
	script := `const {smsCount} = require(` + strconvQuote(js) + `); let t = ""; process.stdin.setEncoding("utf8"); process.stdin.on("data", d => t += d);
process.stdin.on("end", () => console.log(JSON.stringify(JSON.parse(t).map(x => smsCount(x, ` + "10" + `)))));`
	cmd := exec.Command(node, "-e", script)
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var got []struct {
		Coding string `json:"coding"`
		Chars  int    `json:"chars"`
		Units  int    `json:"units"`
		Parts  int    `json:"parts"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node's answer: %v\n%s", err, out)
	}
	if len(got) != len(texts) {
		t.Fatalf("%d answers for %d texts", len(got), len(texts))
	}
	for i, text := range texts {
		want := CountText(text, maxParts)
		g := Count{Coding: got[i].Coding, Chars: got[i].Chars, Units: got[i].Units, Parts: got[i].Parts}
		if g != want {
			t.Errorf("text %d (%q…): browser counts %+v, Go %+v", i, clipRunes(text, 20), g, want)
		}
		// CountText itself is smsq.Split's answer.
		parts, err := smsq.Split(text, 0, maxParts)
		if (err == nil && len(parts) != want.Parts) || (err != nil && want.Parts != 0) {
			t.Errorf("text %d: CountText says %d parts, smsq.Split %d (%v)", i, want.Parts, len(parts), err)
		}
	}
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
