package console

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"smsrouter/channels"
	"smsrouter/ingress/httpapi"
	"smsrouter/router"
)

// artefact is one file the message's delivery wrote, as the page shows it.
type artefact struct {
	Index int
	Path  string
	Kind  string // fax, audio, file
	Gone  bool   // removed since (Asterisk took it, or it was pruned)
	Pages []int  // fax: page numbers
}

type messageData struct {
	V         httpapi.MessageView
	Artefacts []artefact
	Receipts  []router.PartReceipt
	Waiting   bool // deferred or held in the spool: retry and drop apply
	Deferred  bool
	Flash     string
}

func (c *Console) messagePage(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if !channels.ValidID(id) {
		c.problem(w, r, s, http.StatusNotFound, "That is not a message id.")
		return
	}
	v, err := c.source(c.hideText(s)).Describe(r.Context(), id)
	switch {
	case errors.Is(err, httpapi.ErrNotFound):
		c.problem(w, r, s, http.StatusNotFound, "No message "+id+" in the journal or the spool (pruned, or never queued).")
		return
	case err != nil:
		c.internal(w, r, s, "read the message", err)
		return
	}
	d := messageData{V: v, Flash: r.URL.Query().Get("done")}
	d.Artefacts = artefacts(v.Files)
	if c.hideText(s) {
		// A fax page or a voice file is the text in another form.
		for i := range d.Artefacts {
			d.Artefacts[i].Kind, d.Artefacts[i].Pages = "file", nil
		}
	}
	msgID := id
	if v.JoinedInto != "" {
		msgID = v.JoinedInto
	}
	if d.Receipts, err = c.cfg.Journal.Receipts(r.Context(), msgID); err != nil {
		c.internal(w, r, s, "read the receipts", err)
		return
	}
	if sp, ok, err := c.cfg.Admin.Locate(id); err == nil && ok {
		d.Waiting = sp.Where == string(router.StateDeferred) || sp.Where == string(router.StateHeld)
		d.Deferred = sp.Where == string(router.StateDeferred)
	}
	c.render(w, r, s, http.StatusOK, "message", d)
}

// artefacts sorts a message's files into what the page can show.
func artefacts(files []string) []artefact {
	var out []artefact
	for i, f := range files {
		a := artefact{Index: i, Path: f, Kind: "file"}
		switch strings.ToLower(filepath.Ext(f)) {
		case ".tif", ".tiff":
			a.Kind = "fax"
		case ".wav":
			a.Kind = "audio"
		}
		if _, err := os.Stat(f); err != nil {
			a.Gone = true
		} else if a.Kind == "fax" {
			if n, err := faxPageCount(f); err == nil {
				for p := 1; p <= n; p++ {
					a.Pages = append(a.Pages, p)
				}
			}
		}
		out = append(out, a)
	}
	return out
}

// messageFile finds file number n of message id, of the given kind. Only the
// files the journal names for the message are ever read: the URL carries an
// index, never a path.
func (c *Console) messageFile(ctx context.Context, id, n, kind string) (string, error) {
	if !channels.ValidID(id) {
		return "", httpapi.ErrNotFound
	}
	i, err := strconv.Atoi(n)
	if err != nil || i < 0 {
		return "", httpapi.ErrNotFound
	}
	v, err := c.source(true).Describe(ctx, id)
	if err != nil {
		return "", err
	}
	as := artefacts(v.Files)
	if i >= len(as) || as[i].Kind != kind || as[i].Gone {
		return "", httpapi.ErrNotFound
	}
	return as[i].Path, nil
}

func (c *Console) faxPage(w http.ResponseWriter, r *http.Request, s *session) {
	if c.hideText(s) {
		c.problem(w, r, s, http.StatusForbidden, "Message texts, and so their fax pages, are hidden from viewers.")
		return
	}
	path, err := c.messageFile(r.Context(), r.PathValue("id"), r.PathValue("file"), "fax")
	page, perr := strconv.Atoi(strings.TrimSuffix(r.PathValue("page"), ".png"))
	if err != nil || perr != nil {
		http.NotFound(w, r)
		return
	}
	png, err := faxPagePNG(path, page)
	if err != nil {
		c.cfg.Log.Warn("console: fax page", "file", path, "page", page, "err", err)
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Write(png) //nolint:errcheck // the client went away
}

func (c *Console) audio(w http.ResponseWriter, r *http.Request, s *session) {
	if c.hideText(s) {
		c.problem(w, r, s, http.StatusForbidden, "Message texts, and so their voice files, are hidden from viewers.")
		return
	}
	path, err := c.messageFile(r.Context(), r.PathValue("id"), r.PathValue("file"), "audio")
	if err != nil {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "audio/wav")
	http.ServeContent(w, r, "", st.ModTime(), f)
}

func (c *Console) retry(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if !channels.ValidID(id) {
		c.problem(w, r, s, http.StatusNotFound, "That is not a message id.")
		return
	}
	_, err := c.cfg.Admin.RetryNow([]string{id})
	switch {
	case errors.Is(err, router.ErrNotWaiting):
		c.problem(w, r, s, http.StatusConflict, "Message "+id+" is not deferred in the spool (delivered, ended or taken meanwhile): nothing to retry.")
		return
	case err != nil:
		c.internal(w, r, s, "retry the message", err)
		return
	}
	c.audit(r.Context(), s, "retry", id, "")
	http.Redirect(w, r, "/ui/messages/"+id+"?done=retry", http.StatusSeeOther)
}

func (c *Console) drop(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if !channels.ValidID(id) {
		c.problem(w, r, s, http.StatusNotFound, "That is not a message id.")
		return
	}
	notify := r.PostFormValue("notify") == "1"
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" {
		reason = "dropped by the administrator"
	}
	reason = clipRunes(reason, 160)
	_, err := c.cfg.Admin.Drop(r.Context(), id, reason, notify)
	switch {
	case errors.Is(err, router.ErrNotWaiting):
		c.problem(w, r, s, http.StatusConflict, "Message "+id+" is not waiting in the spool (delivered, ended or taken meanwhile): nothing to drop.")
		return
	case err != nil:
		c.internal(w, r, s, "drop the message", err)
		return
	}
	c.audit(r.Context(), s, "drop", id, "notify="+strconv.FormatBool(notify)+" reason="+reason)
	http.Redirect(w, r, "/ui/messages/"+id+"?done=drop", http.StatusSeeOther)
}
