package dialplan

// Reading the dialplan Asterisk runs, to compare it with what Generate prints:
// extensions.conf and its #includes as pbx_config reads them, reduced to what
// the dialplan does (each extension's priorities, labels, applications and
// arguments), so that comments, blank lines, spacing, "exten =" versus
// "exten =>", "same =>" versus a repeated extension and "n" versus a
// number do not count as differences.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Statement is one line of a context, reduced to what it does.
type Statement struct {
	Key  string // "exten", "include", "switch", "ignorepat", or a variable name in [globals]
	Ext  string // exten: the extension or pattern ("9000", "_[+0-9].")
	Prio string // exten: the priority as a number ("1", "2"), or "hint"
	// Label, App and Args are an exten's; Value is everything else's value.
	Label, App, Args, Value string
	File                    string // where it was read, for the report
	Line                    int
	// Var marks a [globals] variable, identified by its name alone.
	Var bool
}

// id is what identifies a statement within its context: an exten by its
// extension and priority, anything else by its whole text.
func (s Statement) id() string {
	switch {
	case s.Key == "exten":
		return "exten " + s.Ext + "," + s.Prio
	case s.Var:
		return "var " + s.Key
	}
	return s.String()
}

// String is the statement as it would be written canonically.
func (s Statement) String() string {
	switch {
	case s.Var:
		return s.Key + "=" + s.Value
	case s.Key != "exten":
		return s.Key + " => " + s.Value
	}
	prio := s.Prio
	if s.Label != "" {
		prio += "(" + s.Label + ")"
	}
	if s.Prio == "hint" {
		return "exten => " + s.Ext + ",hint," + s.Args
	}
	return "exten => " + s.Ext + "," + prio + "," + s.App + "(" + s.Args + ")"
}

// where is "file:line" for the report.
func (s Statement) where() string {
	if s.File == "" {
		return "line " + strconv.Itoa(s.Line)
	}
	return s.File + ":" + strconv.Itoa(s.Line)
}

// Conf is a dialplan as read: the statements of each context, in order.
// Contexts defined more than once (in several files) are merged, as Asterisk
// merges them.
type Conf struct {
	Contexts map[string][]Statement
	Files    []string // the files read, the main one first
	Notes    []string // what was not followed: #exec, missing #tryinclude, too deep
}

// maxIncludeDepth bounds nested #includes (Asterisk's own limit is similar);
// deeper ones are noted, not read.
const maxIncludeDepth = 16

// maxConfBytes bounds one file: a dialplan is a few kilobytes.
const maxConfBytes = 8 << 20

// ReadExtensions reads an extensions.conf and the files it #includes; a
// relative include is looked for in the main file's folder, as Asterisk looks
// in its config folder, and may be a glob.
func ReadExtensions(path string) (*Conf, error) {
	c := &Conf{Contexts: map[string][]Statement{}}
	p := &parser{conf: c, dir: filepath.Dir(path), seen: map[string]bool{}}
	if err := p.file(path, 0, false); err != nil {
		return nil, err
	}
	return c, nil
}

// ParseExtensions reads dialplan text with no #includes followed (they are
// noted), e.g. Generate's output.
func ParseExtensions(data []byte) *Conf {
	c := &Conf{Contexts: map[string][]Statement{}}
	p := &parser{conf: c, seen: map[string]bool{}}
	p.text(data, "", 0)
	return c
}

type parser struct {
	conf *Conf
	dir  string
	seen map[string]bool
	cur  string // the context being read
	// Per context: the extension and priority of the last exten line, which
	// "same" and "n" continue.
	last map[string]struct {
		ext  string
		prio int
	}
}

func (p *parser) file(path string, depth int, optional bool) error {
	abs, err := filepath.Abs(path)
	if err == nil {
		path = abs
	}
	if p.seen[path] {
		p.conf.Notes = append(p.conf.Notes, path+" is included twice (read once)")
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		if optional && errors.Is(err, os.ErrNotExist) {
			p.conf.Notes = append(p.conf.Notes, "#tryinclude "+path+": not there")
			return nil
		}
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfBytes+1))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxConfBytes {
		return fmt.Errorf("%s: larger than %d bytes", path, maxConfBytes)
	}
	p.seen[path] = true
	p.conf.Files = append(p.conf.Files, path)
	p.text(data, path, depth)
	return nil
}

// text reads one file's lines. The current context carries over into an
// included file, as in Asterisk, where #include is textual.
func (p *parser) text(data []byte, file string, depth int) {
	if p.last == nil {
		p.last = map[string]struct {
			ext  string
			prio int
		}{}
	}
	inBlock := false
	for i, raw := range strings.Split(string(data), "\n") {
		line, stillBlock := stripComments(raw, inBlock)
		inBlock = stillBlock
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if line[0] == '#' {
			p.directive(line, file, depth)
			continue
		}
		if line[0] == '[' {
			end := strings.IndexByte(line, ']')
			if end < 0 {
				continue // pbx_config warns and skips it too
			}
			p.cur = strings.TrimSpace(line[1:end])
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		value = strings.TrimPrefix(value, ">")
		p.statement(strings.TrimSpace(key), strings.TrimSpace(value), file, i+1)
	}
}

func (p *parser) directive(line, file string, depth int) {
	word, arg, _ := strings.Cut(line[1:], " ")
	word = strings.ToLower(strings.TrimSpace(word))
	arg = strings.Trim(strings.TrimSpace(arg), `"<>`)
	switch word {
	case "include", "tryinclude":
		if p.dir == "" {
			p.conf.Notes = append(p.conf.Notes, "#"+word+" "+arg+" not followed")
			return
		}
		if depth+1 > maxIncludeDepth {
			p.conf.Notes = append(p.conf.Notes, "#"+word+" "+arg+" in "+file+": nested too deep, not read")
			return
		}
		pattern := arg
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(p.dir, pattern)
		}
		matches, err := filepath.Glob(pattern)
		if err != nil || len(matches) == 0 {
			matches = []string{pattern} // no glob: report the missing file as such
		}
		slices.Sort(matches)
		for _, m := range matches {
			if err := p.file(m, depth+1, word == "tryinclude"); err != nil {
				p.conf.Notes = append(p.conf.Notes, "#"+word+" "+arg+" in "+file+": "+err.Error())
			}
		}
	default:
		p.conf.Notes = append(p.conf.Notes, "#"+word+" in "+file+" not followed")
	}
}

func (p *parser) statement(key, value, file string, line int) {
	if p.cur == "" {
		return
	}
	name := contextName(p.cur)
	if name == "globals" {
		// Variable names are case-sensitive; a later line sets it again.
		p.conf.Contexts[name] = append(p.conf.Contexts[name], Statement{Key: key, Value: value, File: file, Line: line, Var: true})
		return
	}
	st := Statement{Key: strings.ToLower(key), Value: value, File: file, Line: line}
	last := p.last[name]
	switch st.Key {
	case "exten", "same":
		var ext, prio, rest string
		if st.Key == "exten" {
			var ok bool
			ext, rest, ok = strings.Cut(value, ",")
			if !ok {
				return
			}
			ext = strings.TrimSpace(ext)
		} else {
			ext, rest = last.ext, value
		}
		prio, rest, _ = strings.Cut(rest, ",")
		prio = strings.TrimSpace(prio)
		label := ""
		if open := strings.IndexByte(prio, '('); open >= 0 && strings.HasSuffix(prio, ")") {
			label = strings.TrimSpace(prio[open+1 : len(prio)-1])
			prio = strings.TrimSpace(prio[:open])
		}
		st.Key, st.Ext, st.Label = "exten", ext, label
		n := 0
		switch {
		case strings.EqualFold(prio, "hint"):
			st.Prio, st.Args = "hint", strings.TrimSpace(rest)
			p.conf.Contexts[name] = append(p.conf.Contexts[name], st)
			return
		case prio == "n":
			n = last.prio + 1
		case prio == "s":
			n = last.prio
		case strings.HasPrefix(prio, "n+"):
			k, _ := strconv.Atoi(prio[2:])
			n = last.prio + k
		default:
			n, _ = strconv.Atoi(prio)
		}
		p.last[name] = struct {
			ext  string
			prio int
		}{ext, n}
		st.Prio = strconv.Itoa(n)
		app := strings.TrimSpace(rest)
		if open := strings.IndexByte(app, '('); open >= 0 {
			st.App = strings.TrimSpace(app[:open])
			st.Args = strings.TrimSuffix(strings.TrimSpace(app[open+1:]), ")")
		} else {
			// "Hangup" and "Hangup()" are the same; "App,args" is the old syntax.
			a, args, _ := strings.Cut(app, ",")
			st.App, st.Args = strings.TrimSpace(a), strings.TrimSpace(args)
		}
		// Application names are case-insensitive.
		st.App = strings.ToLower(st.App)
		st.Value = ""
	}
	p.conf.Contexts[name] = append(p.conf.Contexts[name], st)
}

// contextName is the name of "[smsc](+)" or "[smsc](tmpl)".
func contextName(header string) string {
	name, _, _ := strings.Cut(header, "(")
	return strings.TrimSpace(name)
}

// stripComments removes ';' comments (not "\;", which is a literal ';') and
// ";-- … --;" block comments, which may span lines.
func stripComments(line string, inBlock bool) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(line); i++ {
		if inBlock {
			if strings.HasPrefix(line[i:], "--;") {
				inBlock = false
				i += 2
			}
			continue
		}
		c := line[i]
		switch {
		case c == '\\' && i+1 < len(line) && line[i+1] == ';':
			b.WriteByte(';')
			i++
		case strings.HasPrefix(line[i:], ";--"):
			inBlock = true
			i += 2
		case c == ';':
			return b.String(), false
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), inBlock
}

// Difference is one way the dialplan Asterisk runs differs from the
// generated one.
type Difference struct {
	Context string
	Kind    string // "missing", "different", "extra", "no context"
	Want    string // the generated statement ("" for extra)
	Got     string // the statement found, with where ("" for missing)
}

func (d Difference) String() string {
	switch d.Kind {
	case "no context":
		return fmt.Sprintf("[%s]: no such context", d.Context)
	case "missing":
		return fmt.Sprintf("[%s]: missing %s", d.Context, d.Want)
	case "extra":
		return fmt.Sprintf("[%s]: %s is not in smsrouter dialplan's output", d.Context, d.Got)
	}
	return fmt.Sprintf("[%s]: %s, smsrouter dialplan has %s", d.Context, d.Got, d.Want)
}

// Compare lists how got's contexts differ from want's, for each of contexts;
// for "globals" only the variables want sets are looked at (Asterisk has one
// [globals] for everything).
func Compare(want, got *Conf, contexts ...string) []Difference {
	var out []Difference
	for _, name := range contexts {
		w := want.Contexts[name]
		g, ok := got.Contexts[name]
		if !ok {
			out = append(out, Difference{Context: name, Kind: "no context"})
			continue
		}
		byID := map[string]Statement{}
		for _, s := range g {
			// The first definition of a priority counts (pbx_config refuses a
			// second one); the last setting of a variable does.
			if _, dup := byID[s.id()]; !dup || s.Var {
				byID[s.id()] = s
			}
		}
		wanted := map[string]bool{}
		for _, s := range w {
			wanted[s.id()] = true
			found, ok := byID[s.id()]
			switch {
			case !ok && name == "globals":
				out = append(out, Difference{Context: name, Kind: "missing", Want: s.Key + "=" + s.Value})
			case !ok:
				out = append(out, Difference{Context: name, Kind: "missing", Want: s.String()})
			case found.String() != s.String():
				out = append(out, Difference{Context: name, Kind: "different", Want: s.String(), Got: found.String() + " (" + found.where() + ")"})
			}
		}
		if name == "globals" {
			// Variables: matched by name, since [globals] holds other things too.
			continue
		}
		for _, s := range g {
			if !wanted[s.id()] {
				out = append(out, Difference{Context: name, Kind: "extra", Got: s.String() + " (" + s.where() + ")"})
			}
		}
	}
	return out
}
