package console

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"smsrouter/router"
)

// maxDirectoryRows bounds one directory page; a search narrows it.
const maxDirectoryRows = 500

// dirRow is one PBXNumbers row as the page shows it, read straight from the
// table on every request (no cache: an UPDATE by SQL shows at once).
type dirRow struct {
	Number, Letter, Extension, Language string
	Problem                             string // the router's reading: why the row cannot be used
	Findings                            []Finding
}

type directoryData struct {
	Q, Flash, Error string
	Rows            []dirRow
	More            bool
	Other           []Finding // findings of no row shown
	Letters         []string
	Form            dirRow // the add/change form, refilled after a refusal
}

func (c *Console) directoryRows(ctx context.Context, q string) ([]dirRow, bool, error) {
	where, args := "", []any{}
	if q != "" {
		where = "WHERE p.Account LIKE ? ESCAPE '!' OR p.Extension LIKE ? ESCAPE '!'"
		like := "%" + strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(q) + "%"
		args = append(args, like, like)
	}
	rows, err := c.cfg.Store.DB.QueryContext(ctx, fmt.Sprintf(
		"SELECT p.Account, p.Message, p.Extension, COALESCE(v.Language, '') FROM PBXNumbers p LEFT JOIN smsrouter_number_voice v ON v.Account = p.Account %s ORDER BY p.Account LIMIT %d",
		where, maxDirectoryRows+1), args...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	var out []dirRow
	for rows.Next() {
		var acc, msg, ext sql.NullString
		var lang string
		if err := rows.Scan(&acc, &msg, &ext, &lang); err != nil {
			return nil, false, err
		}
		e := router.ReadRow(strings.TrimSpace(acc.String), msg, ext)
		out = append(out, dirRow{Number: acc.String, Letter: msg.String, Extension: ext.String, Language: lang, Problem: e.Problem})
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	more := len(out) > maxDirectoryRows
	if more {
		out = out[:maxDirectoryRows]
	}
	return out, more, nil
}

func (c *Console) directoryPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := directoryData{Q: strings.TrimSpace(q.Get("q")), Flash: q.Get("done")}
	d.Form.Letter = "S"
	if edit := strings.TrimSpace(q.Get("edit")); edit != "" {
		// Fill the form with the row as it is now, to change it.
		rows, _, err := c.directoryRows(r.Context(), edit)
		if err != nil {
			c.internal(w, r, s, "read the directory", err)
			return
		}
		for _, row := range rows {
			if strings.TrimSpace(row.Number) == edit {
				d.Form = row
				d.Form.Letter = strings.ToUpper(strings.TrimSpace(row.Letter))
			}
		}
	}
	c.showDirectory(w, r, s, http.StatusOK, d)
}

func (c *Console) showDirectory(w http.ResponseWriter, r *http.Request, s *session, code int, d directoryData) {
	rows, more, err := c.directoryRows(r.Context(), d.Q)
	if err != nil {
		c.internal(w, r, s, "read the directory", err)
		return
	}
	d.Rows, d.More = rows, more
	for _, l := range router.Letters {
		d.Letters = append(d.Letters, string(l))
	}
	if c.cfg.Lint != nil {
		byNumber := map[string]int{}
		for i, row := range d.Rows {
			byNumber[row.Number] = i
			byNumber[strings.TrimSpace(row.Number)] = i
		}
		for _, f := range c.cfg.Lint(r.Context()) {
			placed := false
			for _, n := range f.Numbers {
				if i, ok := byNumber[n]; ok {
					d.Rows[i].Findings = append(d.Rows[i].Findings, f)
					placed = true
				}
			}
			if !placed && (d.Q == "" || len(f.Numbers) == 0) {
				d.Other = append(d.Other, f)
			}
		}
	}
	c.render(w, r, s, code, "directory", d)
}

// setNumber adds or changes a row with `smsrouter number set`'s own checks,
// and the number's voice language like `smsrouter number voice`.
func (c *Console) setNumber(w http.ResponseWriter, r *http.Request, s *session) {
	form := dirRow{Number: strings.TrimSpace(r.PostFormValue("number")), Letter: strings.TrimSpace(r.PostFormValue("letter")),
		Extension: strings.TrimSpace(r.PostFormValue("extension")), Language: strings.TrimSpace(r.PostFormValue("language"))}
	refuse := func(msg string) {
		c.showDirectory(w, r, s, http.StatusUnprocessableEntity, directoryData{Error: msg, Form: form})
	}
	ctx := r.Context()
	if err := router.CheckNumber("number", form.Number); err != nil {
		refuse(err.Error())
		return
	}
	lang := form.Language
	if lang == "default" {
		lang = ""
	}
	_, keepVoice, err := c.cfg.Store.VoiceOptions(ctx, form.Number)
	if err != nil {
		c.internal(w, r, s, "read the number's voice", err)
		return
	}
	if lang != "" && c.cfg.CheckVoice != nil {
		if err := c.cfg.CheckVoice(ctx, lang, keepVoice); err != nil {
			refuse(fmt.Sprintf("number %s: the speech engine cannot read language %s: %v", form.Number, lang, err))
			return
		}
	}
	_, err = c.cfg.Store.SetNumber(ctx, form.Number, form.Letter, form.Extension)
	switch {
	case errors.Is(err, router.ErrBadEntry):
		refuse(err.Error())
		return
	case err != nil:
		c.internal(w, r, s, "change the directory", err)
		return
	}
	err = c.cfg.Store.SetVoiceOptions(ctx, form.Number, lang, keepVoice)
	switch {
	case errors.Is(err, router.ErrBadVoiceOption):
		refuse(err.Error() + " (the letter and Extension were saved)")
		return
	case err != nil:
		c.internal(w, r, s, "save the number's voice", err)
		return
	}
	c.audit(ctx, s, "number set", form.Number, fmt.Sprintf("letter=%s extension=%s language=%s", strings.ToUpper(form.Letter), form.Extension, lang))
	http.Redirect(w, r, "/ui/directory?q="+url.QueryEscape(form.Number)+"&done=saved", http.StatusSeeOther)
}

func (c *Console) deleteNumber(w http.ResponseWriter, r *http.Request, s *session) {
	number := strings.TrimSpace(r.PostFormValue("number"))
	if err := router.CheckNumber("number", number); err != nil {
		c.showDirectory(w, r, s, http.StatusUnprocessableEntity, directoryData{Error: err.Error()})
		return
	}
	if _, err := c.cfg.Store.DB.ExecContext(r.Context(), "DELETE FROM PBXNumbers WHERE Account = ?", number); err != nil {
		c.internal(w, r, s, "change the directory", err)
		return
	}
	c.audit(r.Context(), s, "number delete", number, "")
	http.Redirect(w, r, "/ui/directory?done=deleted", http.StatusSeeOther)
}
