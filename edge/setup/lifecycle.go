package setup

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// When the page is open. It opens on a box's first start and when it is
// re-opened (central, or `vigil provision reopen` on the box); it closes
// when the installer finishes, OpenFor after it was opened (enrolled or
// not: a box nobody finished setting up does not keep a guessable page
// open for ever), and on an enrolled box IdleClose after the installer's
// last request. When it was opened is kept in the data directory
// (OpenedFile), so a restart does not restart the clock.

// DefaultOpenFor is how long the page stays open without edge.yaml's
// setup.open_hours.
const DefaultOpenFor = 24 * time.Hour

// openState is OpenedFile: when and how the page was last opened.
type openState struct {
	At time.Time `json:"at"`
	By string    `json:"by"`
	// Audited: the opening is in central's audit log. A re-opening on the
	// box itself (`vigil provision reopen`, the edge may not be running)
	// is recorded by the edge before the page serves anything.
	Audited bool `json:"audited"`
}

// saneClock: an opening time before this is a clock not set yet (a box
// without a real-time clock before NTP), not a real one.
var saneClock = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func writeOpenState(dataDir string, st openState) error {
	b, _ := json.Marshal(st)
	path := filepath.Join(dataDir, OpenedFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// readOpenState reads OpenedFile; an error wrapping os.ErrNotExist: none.
func readOpenState(dataDir string) (openState, error) {
	var st openState
	b, err := os.ReadFile(filepath.Join(dataDir, OpenedFile))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil || st.At.IsZero() {
		return openState{}, fmt.Errorf("%s: not a record of when the page was opened", OpenedFile)
	}
	return st, nil
}

// opened is when the page was opened. A missing record (the first start,
// or a box that ran an earlier version) starts the clock now, as does one
// from a clock that was wrong (before saneClock, or in the future); an
// unreadable one too, but that opening is then recorded for central's
// audit log like a re-opening on the box.
func (s *Server) opened() openState {
	now := s.now()
	st, err := readOpenState(s.cfg.DataDir)
	if err == nil && !(st.At.Before(saneClock) && !now.Before(saneClock)) && !st.At.After(now.Add(5*time.Minute)) {
		return st
	}
	next := openState{At: now, By: "the box started with its setup page open", Audited: true}
	switch {
	case err == nil:
		next.By, next.Audited = "the opening time was reset: the clock was wrong when the page was opened", st.Audited
		s.log.Warn("setup page: opening time reset", "was", st.At, "now", now)
	case !errors.Is(err, os.ErrNotExist):
		next.By, next.Audited = "unknown: the record of the opening was unreadable", false
		s.log.Warn("setup page: opening time unreadable; the page is open from now", "err", err)
	}
	if err := writeOpenState(s.cfg.DataDir, next); err != nil {
		s.log.Warn("setup page: opening time not kept", "err", err)
	}
	return next
}

// closedWhy is the closed marker's text ("<time> <why>"); ok false: open.
func (s *Server) closedWhy() (string, bool) {
	b, err := os.ReadFile(filepath.Join(s.cfg.DataDir, ClosedFile))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// closeIfDue closes the page once it has been open for OpenFor, or, on an
// enrolled box, once the installer has left (IdleClose). Closing is the
// safe way: it is recorded for central's audit log where possible, and
// happens even when that fails.
func (s *Server) closeIfDue() {
	s.lifeMu.Lock() // one close, recorded once
	defer s.lifeMu.Unlock()
	if s.Closed() {
		return
	}
	now := s.now()
	st := s.opened()
	why := ""
	if open := now.Sub(st.At); open >= s.openFor {
		why = fmt.Sprintf("open for %v since it was opened at %s", open.Round(time.Minute), st.At.UTC().Format(time.RFC3339))
	} else {
		s.mu.Lock()
		last := s.lastUse
		s.mu.Unlock()
		if st.At.After(last) {
			last = st.At
		}
		if idle := now.Sub(last); idle >= IdleClose && s.cfg.Backend.SetupEnrolled() {
			why = fmt.Sprintf("enrolled; nobody used the page for %v", idle.Round(time.Minute))
		}
	}
	if why == "" {
		return
	}
	if err := s.cfg.Backend.SetupAudit(ActionConfigChange, s.target("setup"), "", map[string]string{"setup": "closed", "why": why}); err != nil {
		s.log.Error("the setup page closes by itself; this could not be recorded for central's audit log", "err", err)
	}
	if err := s.Close(why); err != nil {
		s.log.Error("closing the setup page", "err", err)
	}
}

// auditOpening records a re-opening made on the box itself before the
// page serves anything; an error: not recorded, the page does not serve.
func (s *Server) auditOpening() error {
	st := s.opened()
	if st.Audited {
		return nil
	}
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if st = s.opened(); st.Audited {
		return nil
	}
	details := map[string]string{"setup": "reopened", "by": st.By, "at": st.At.UTC().Format(time.RFC3339)}
	if err := s.cfg.Backend.SetupAudit(ActionConfigChange, s.target("setup"), "", details); err != nil {
		return err
	}
	st.Audited = true
	if err := writeOpenState(s.cfg.DataDir, st); err != nil {
		s.log.Warn("setup page: opening time not kept", "err", err)
	}
	s.log.Info("setup page re-opened on the box", "by", st.By, "closes_at", st.At.Add(s.openFor))
	return nil
}

// writeClosed answers a request to a closed page: the page itself says
// so in words (English and Chinese) and how to open it again; the API
// answers 410 with the same in "error".
func (s *Server) writeClosed(w http.ResponseWriter, r *http.Request, why string) {
	msg := "The setup page of this box is closed (" + why + "). To open it again: an administrator re-opens it from central " +
		"(the box's page in the console, or POST /api/v1/edges/{id}/setup/reopen), or on the box run " +
		"`vigil provision reopen --data DATA_DIR`. It then stays open for " + fmtHours(s.openFor) + "."
	if strings.HasPrefix(r.URL.Path, "/setup/api/") {
		writeJSON(w, http.StatusGone, map[string]any{"error": msg, "closed": true})
		return
	}
	zh := "本设备的安装页面已关闭。要重新打开：由管理员在中心重新打开，或在设备上运行 `vigil provision reopen --data 数据目录`；之后页面保持打开 " + fmtHours(s.openFor) + "。"
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	w.WriteHeader(http.StatusGone)
	fmt.Fprintf(w, "<!doctype html><html><head><meta charset=\"utf-8\"><title>Setup closed</title></head><body>"+
		"<h1>Setup page closed</h1><p id=\"closed\">%s</p><p lang=\"zh-CN\">%s</p></body></html>\n",
		html.EscapeString(msg), html.EscapeString(zh))
}

func fmtHours(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%d hours", int(d/time.Hour))
	}
	return d.String()
}

// Reopen removes the closed marker of a box's data directory and starts
// the page's open time now (`vigil provision reopen`, on the box; the
// running edge records the re-opening for central's audit log before the
// page serves anything).
func Reopen(dataDir string) error {
	return reopen(dataDir, openState{At: time.Now(), By: "vigil provision reopen"})
}

func reopen(dataDir string, st openState) error {
	if err := writeOpenState(dataDir, st); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	err := os.Remove(filepath.Join(dataDir, ClosedFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
