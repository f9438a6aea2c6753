package edge

import (
	"github.com/vigil-perimeter/vigil/internal/repeats"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/edge/outbox"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/wire"
)

// TestAccessViewsRecordedOncePerWindow: a timeline or picture polled
// again by the same user, with the same details, is one audit record per
// accessViewWindow (as central records its own views); another user,
// other details or a download are recorded each time, and a view is
// recorded again once the window has passed.
func TestAccessViewsRecordedOncePerWindow(t *testing.T) {
	log := testrig.Logger(t)
	box, err := outbox.Open(filepath.Join(t.TempDir(), "outbox"), log)
	if err != nil {
		t.Fatal(err)
	}
	guard := &guardedBox{box: box}
	defer guard.close()
	a := newAuditLog("gate-1", guard, prometheus.NewRegistry(), log)
	guardA, guardB := accessActor{User: "anna", Role: roleGuard}, accessActor{User: "bert", Role: roleGuard}
	timeline := map[string]string{"route": "GET /api/v1/recordings/gate-cam", "start": "2026-01-01T10:00:00Z"}
	other := map[string]string{"route": "GET /api/v1/recordings/gate-cam", "start": "2026-01-01T11:00:00Z"}
	record := func(who accessActor, action string, details map[string]string) {
		t.Helper()
		if err := a.record(who, action, "gate-1/gate-cam", "10.0.0.9", details); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		t.Helper()
		ents, err := box.After(0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range ents {
			if e.Kind == wire.TypeAccess {
				n++
			}
		}
		return n
	}
	for range 5 {
		record(guardA, accessView, timeline) // a console polling its timeline
	}
	if got := count(); got != 1 {
		t.Fatalf("5 identical views: %d records, want 1", got)
	}
	record(guardA, accessView, other)
	record(guardB, accessView, timeline)
	if got := count(); got != 3 {
		t.Fatalf("other details and another user: %d records, want 3", got)
	}
	record(guardA, accessDownload, timeline)
	record(guardA, accessDownload, timeline)
	if got := count(); got != 5 {
		t.Fatalf("two downloads: %d records, want 5 (downloads are never folded)", got)
	}
	// The window passes for anna's first view (internal/repeats tests the
	// timing itself): a fresh window has seen nothing.
	a.views = repeats.New(accessViewWindow)
	record(guardA, accessView, timeline)
	if got := count(); got != 6 {
		t.Fatalf("a view after the window: %d records, want 6", got)
	}
}
