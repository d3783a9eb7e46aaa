package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"smsrouter/asteriskconf/dialplan"
	tts "smsrouter/render/voice"
	"smsrouter/router"
)

// maxFindings bounds the directory findings doctor lists one by one; the rest
// are counted in one line.
const maxFindings = 50

// checkDirectoryData reads every PBXNumbers row the way the router reads it
// (router.ReadRow, the lookup's own code) and lists each row the router would
// not deliver to as it should, with the row and a fix: NULL or empty numbers,
// bad letters, Extensions their letter cannot dial, duplicate numbers, C
// numbers no [command] rule serves, T numbers without [sip], V numbers whose
// language or voice the engine does not have. p is the checked configuration,
// nil when it has problems (then what depends on it is not checked). It
// returns how many numbers have letter V.
func (d *doctor) checkDirectoryData(ctx context.Context, store *router.Store, p *plan) (vNumbers int) {
	rows, err := store.DB.QueryContext(ctx, "SELECT Account, Message, Extension FROM PBXNumbers ORDER BY Account")
	if err != nil {
		d.add(checkFail, "directory", "PBXNumbers: "+err.Error(), "smsrouter migrate")
		return 0
	}
	defer rows.Close()
	var findings []check
	find := func(number string, level checkLevel, detail, fix string) {
		f := check{Name: "directory", Level: level, Detail: detail, Fix: fix}
		if number != "" {
			f.Numbers = []string{number}
		}
		findings = append(findings, f)
	}
	type seen struct {
		entries []router.Entry
	}
	byNumber := map[string]*seen{}
	var order []string
	var vList []string
	nrows := 0
	for rows.Next() {
		var acc, msg, ext sql.NullString
		if err := rows.Scan(&acc, &msg, &ext); err != nil {
			d.add(checkFail, "directory", "PBXNumbers: "+err.Error(), "")
			return 0
		}
		nrows++
		what := fmt.Sprintf("(Message %s, Extension %s)", sqlValue(msg), sqlValue(ext))
		number := strings.TrimSpace(acc.String)
		switch {
		case !acc.Valid:
			find("", checkFail, "PBXNumbers row with Account NULL "+what+": no number reaches it",
				"DELETE FROM PBXNumbers WHERE Account IS NULL")
			continue
		case number == "":
			find("", checkFail, "PBXNumbers row with an empty Account "+what+": no number reaches it",
				"DELETE FROM PBXNumbers WHERE TRIM(Account) = ''")
			continue
		case router.CheckNumber("number", number) != nil:
			find(acc.String, checkFail, fmt.Sprintf("PBXNumbers row Account=%s %s: %v", sqlValue(acc), what, router.CheckNumber("Account", number)),
				fmt.Sprintf("UPDATE PBXNumbers SET Account = '<digits>' WHERE Account = %s, or delete the row", sqlValue(acc)))
			continue
		case acc.String != number:
			find(acc.String, checkWarn, fmt.Sprintf("PBXNumbers row Account=%s has blanks around the number: a lookup of %s does not find it on every database", sqlValue(acc), number),
				fmt.Sprintf("UPDATE PBXNumbers SET Account = TRIM(Account) WHERE Account = %s", sqlValue(acc)))
		}
		e := router.ReadRow(number, msg, ext)
		if byNumber[number] == nil {
			byNumber[number] = &seen{}
			order = append(order, number)
		}
		byNumber[number].entries = append(byNumber[number].entries, e)
		if e.Problem != "" {
			// The letter the row meant, when it has one, so the fix keeps it.
			letter := "S"
			if l := strings.ToUpper(strings.TrimSpace(msg.String)); len(l) == 1 && strings.Contains(router.Letters, l) {
				letter = l
			}
			find(number, checkFail, e.Problem+"; its messages are bounced with the unreachable notice",
				fmt.Sprintf("smsrouter number set %s %s EXTENSION (letters: S F V C T N; e.g. PJSIP/1001 for S, T and V, SIP/… or Local/… for F)", number, letter))
		}
	}
	if err := rows.Err(); err != nil {
		d.add(checkFail, "directory", "PBXNumbers: "+err.Error(), "")
		return 0
	}

	for _, number := range order {
		s := byNumber[number]
		if len(s.entries) > 1 {
			var forms []string
			for _, e := range s.entries {
				if e.Problem != "" {
					forms = append(forms, "unusable")
				} else {
					forms = append(forms, string(e.Letter)+" "+e.Extension)
				}
			}
			level, why := checkWarn, "the rows agree"
			if len(slices.Compact(slices.Sorted(slices.Values(forms)))) > 1 {
				level, why = checkFail, "the rows differ ("+strings.Join(forms, "; ")+"): lookups use the first usable one, which may not be the one you edit"
			}
			find(number, level, fmt.Sprintf("number %s is in PBXNumbers %d times (the table has no key); %s", number, len(s.entries), why),
				fmt.Sprintf("DELETE FROM PBXNumbers WHERE Account = '%s'; then smsrouter number set %s LETTER EXTENSION", number, number))
		}
		// What the lookup uses: the first usable row.
		var e router.Entry
		for _, x := range s.entries {
			if x.Problem == "" {
				e = x
				break
			}
		}
		switch e.Letter {
		case 'C':
			if p != nil && !p.command.Serves(number) {
				find(number, checkFail, fmt.Sprintf("number %s has letter C, but no [[command.rule]] serves it: its messages are bounced with the no_service notice", number),
					fmt.Sprintf("add numbers = [\"%s\"] to a [[command.rule]] (a rule without numbers serves every C number), or give the number another letter", number))
			}
		case 'T':
			if p != nil && p.sip == nil {
				find(number, checkFail, fmt.Sprintf("number %s has letter T, but [sip] is not configured: its messages are bounced with the no_service notice", number),
					"configure [sip] with the AMI user `smsrouter dialplan --manager` prints, or give the number another letter")
			}
		case 'V':
			vList = append(vList, number)
		}
	}
	if p != nil && len(vList) > 0 {
		findings = append(findings, d.voiceFindings(ctx, store, vList)...)
	}
	findings = append(findings, wayFindings(ctx, store)...)

	level := checkOK
	for _, f := range findings {
		level = max(level, f.Level)
	}
	summary := fmt.Sprintf("%d numbers in %d PBXNumbers rows", len(order), nrows)
	switch {
	case nrows == 0:
		d.add(checkWarn, "directory", "PBXNumbers is empty: every message is bounced as unknown", "smsrouter number set NUMBER S PJSIP/EXT")
		return 0
	case len(findings) == 0:
		d.add(checkOK, "directory", summary+", every row usable", "")
	default:
		d.add(level, "directory", fmt.Sprintf("%s, %d findings:", summary, len(findings)), "see the findings below, each with its fix")
	}
	for i, f := range findings {
		if i == maxFindings {
			d.add(level, "directory", fmt.Sprintf("… and %d more findings", len(findings)-maxFindings), "fix the ones above and run doctor again")
			break
		}
		d.checks = append(d.checks, f)
	}
	return len(vList)
}

// voiceFindings asks the speech engine, once per language and voice in use,
// whether it has what the V numbers are to be read in.
func (d *doctor) voiceFindings(ctx context.Context, store *router.Store, numbers []string) []check {
	r, err := d.cfg.Voice.renderer()
	if err != nil {
		return nil // a config problem, listed already
	}
	type choice struct{ lang, voice string }
	users := map[choice][]string{}
	var order []choice
	var out []check
	for _, n := range numbers {
		lang, voiceName, err := store.VoiceOptions(ctx, n)
		if err != nil {
			return append(out, check{Name: "directory", Level: checkWarn, Detail: "voice options: " + err.Error(), Fix: "smsrouter migrate"})
		}
		var raw [2]string
		if err := store.DB.QueryRowContext(ctx, "SELECT Language, Voice FROM smsrouter_number_voice WHERE Account = ?", n).Scan(&raw[0], &raw[1]); err == nil {
			if strings.TrimSpace(raw[0]) != lang || strings.TrimSpace(raw[1]) != voiceName {
				out = append(out, check{Name: "directory", Level: checkWarn, Numbers: []string{n},
					Detail: fmt.Sprintf("number %s: stored language %s or voice %s cannot be given to an engine and is ignored", n, strconv.Quote(raw[0]), strconv.Quote(raw[1])),
					Fix:    fmt.Sprintf("smsrouter number voice %s LANG [VOICE]", n)})
			}
		}
		c := choice{lang, voiceName}
		if c.lang == "" {
			c.lang = d.cfg.Voice.DefaultLang
		}
		if c.voice == "" {
			c.voice = d.cfg.Voice.DefaultVoice
		}
		if users[c] == nil {
			order = append(order, c)
		}
		users[c] = append(users[c], n)
	}
	for _, c := range order {
		err := r.CheckVoice(ctx, c.lang, c.voice)
		if !errors.Is(err, tts.ErrNoSuchVoice) {
			continue // fine, or the engine could not be asked: the tts check says so
		}
		ns := users[c]
		shown := strings.Join(ns[:min(len(ns), 5)], ", ")
		if len(ns) > 5 {
			shown += fmt.Sprintf(" and %d more", len(ns)-5)
		}
		out = append(out, check{Name: "directory", Level: checkFail, Numbers: ns,
			Detail: fmt.Sprintf("numbers %s (letter V) are read in language %s, voice %s: %v; their messages wait until they expire", shown, orDefault(c.lang, "default"), orDefault(c.voice, "default"), err),
			Fix:    "smsrouter number voice NUMBER LANG [VOICE] with one the engine has, or change [voice] default_lang / default_voice"})
	}
	return out
}

// sqlValue shows a column value as SQL would write it.
func sqlValue(ns sql.NullString) string {
	if !ns.Valid {
		return "NULL"
	}
	s := ns.String
	for _, c := range s {
		if c < 0x20 || c == 0x7f || c == '\'' || c == '\\' || c > 0x7e {
			return strconv.QuoteToASCII(s)
		}
	}
	if len(s) > 40 {
		return strconv.Quote(s[:40] + "…")
	}
	return "'" + s + "'"
}

// checkDialplan compares the [smsc] and [messages] contexts of the dialplan
// Asterisk reads ([dialplan] extensions_conf and its #includes) with what
// `smsrouter dialplan` prints for this configuration.
func (d *doctor) checkDialplan() {
	path := orDefault(d.cfg.Dialplan.ExtensionsConf, defaultExtensionsConf)
	o, err := d.cfg.dialplanOptions()
	if err != nil {
		return // a config problem, listed already
	}
	if o.SMSCNumber == "" {
		d.add(checkSkip, "dialplan", "no smsc_number: nothing to compare", "")
		return
	}
	text, err := dialplan.Generate(o)
	if err != nil {
		return
	}
	conf, err := dialplan.ReadExtensions(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = fmt.Errorf("%s: %w", pe.Path, pe.Err)
		}
		d.add(checkSkip, "dialplan", fmt.Sprintf("not compared: %v (set [dialplan] extensions_conf)", err), "")
		return
	}
	smsc, msgs := orDefault(o.SMSCContext, dialplan.DefaultSMSCContext), orDefault(o.MessagesContext, dialplan.DefaultMessagesContext)
	contexts := []string{"globals", smsc, msgs}
	if o.Outcome {
		contexts = append(contexts, dialplan.OutcomeContexts...)
	}
	diffs := dialplan.Compare(dialplan.ParseExtensions(text), conf, contexts...)
	gen := "smsrouter dialplan"
	if d.configFile != "" {
		gen += " --config " + d.configFile
	}
	fix := gen + " > /etc/asterisk/extensions_smsrouter.conf, #include it from " + path + ", then asterisk -rx 'dialplan reload'"
	read := fmt.Sprintf("%s (%d files)", path, len(conf.Files))
	if len(diffs) == 0 {
		names := fmt.Sprintf("[%s] and [%s]", smsc, msgs)
		if o.Outcome {
			names = fmt.Sprintf("[%s], [%s] and the outcome contexts", smsc, msgs)
		}
		d.add(checkOK, "dialplan", fmt.Sprintf("%s in %s match smsrouter dialplan", names, read), "")
	}
	d.checkOutcome(o, conf)
	for _, df := range diffs {
		level := checkFail
		if df.Kind == "extra" {
			level = checkWarn // an admin's addition; it may be deliberate
		}
		d.add(level, "dialplan", df.String()+" in "+read, fix)
	}
	for _, n := range conf.Notes {
		d.add(checkWarn, "dialplan", "not compared: "+n, "")
	}
}

// checkOutcome is doctor's word on [dialplan] outcome. On, the calls start in
// the outcome contexts (compared above) and report to FastAGI callresult,
// which someone must serve. Off, a fax that failed after the answer counts
// as delivered and a busy line as unanswered: doctor suggests it.
func (d *doctor) checkOutcome(o dialplan.Options, conf *dialplan.Conf) {
	if !o.Outcome {
		fix := "set [dialplan] outcome = true, print the dialplan again (smsrouter dialplan) and reload it"
		if _, ok := conf.Contexts[dialplan.OutcomeFaxContext]; ok {
			d.add(checkWarn, "outcome", "the dialplan has the outcome contexts but [dialplan] outcome is off: calls run their applications directly", fix)
			return
		}
		d.add(checkSkip, "outcome", "[dialplan] outcome is off: a fax that fails after the answer counts as delivered, and a busy line as no answer; set [dialplan] outcome = true to tell them apart", fix)
		return
	}
	if d.cfg.AGI.Listen == "" {
		d.add(checkWarn, "outcome", "[dialplan] outcome is on but [agi] listen is not set: serve answers no callresult, so every call is judged by its archive alone after [evidence] result_wait",
			"set [agi] listen (or run `smsrouter agi`) at the address the dialplan calls")
	}
}
