package central

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/testrig/postgres"
	"github.com/vigil-perimeter/vigil/wire"
)

// TestReplicasShareBookmarksAndLayouts: a bookmark made through A is
// listed through B, and shows on B's playback timeline's store; a user's
// walls saved through A are read through B and replaced through B; a
// full disk on the shared database answers 507 on either.
func TestReplicasShareBookmarksAndLayouts(t *testing.T) {
	pg := postgres.Start(t)
	url := pg.CreateDB(t, "marks")
	keys := t.TempDir()
	a, b := startReplica(t, url, keys), startReplica(t, url, keys)
	onA := signIn(t, a, "ann", RoleGuard)
	onB := &browser{t: t, s: b, cookie: onA.cookie}

	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	resp, body := onA.do(http.MethodPost, "/api/v1/bookmarks", map[string]any{"edge": northID, "camera": "gate-cam", "at": at, "note": "van at the barrier"})
	var made Bookmark
	if json.Unmarshal(body, &made); resp.StatusCode != http.StatusCreated {
		t.Fatalf("bookmark through A: %d %s", resp.StatusCode, body)
	}
	resp, body = onB.do(http.MethodGet, "/api/v1/bookmarks?q=VAN", nil)
	var page struct{ Bookmarks []Bookmark }
	if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != http.StatusOK || len(page.Bookmarks) != 1 || page.Bookmarks[0] != made {
		t.Fatalf("bookmarks through B: %d %s; want %+v", resp.StatusCode, body, made)
	}
	if got, err := b.playback.bookmarks.bookmarks(bookmarkQuery{Edge: northID, Camera: "gate-cam", From: at, To: at.Add(time.Nanosecond), Limit: 10}); err != nil || len(got) != 1 {
		t.Fatalf("B's playback bookmarks: %+v, %v", got, err)
	}

	walls := Layouts{Layouts: []Layout{{Name: "Gates", Grid: 4, Tiles: []string{northID + "/gate-cam", ""}}}, Current: "Gates"}
	if resp, body := onA.do(http.MethodPut, "/api/v1/me/layouts", walls); resp.StatusCode != http.StatusOK {
		t.Fatalf("layouts through A: %d %s", resp.StatusCode, body)
	}
	readLayouts := func(br *browser) Layouts {
		t.Helper()
		resp, body := br.do(http.MethodGet, "/api/v1/me/layouts", nil)
		var ls Layouts
		if err := json.Unmarshal(body, &ls); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("layouts: %d %s", resp.StatusCode, body)
		}
		return ls
	}
	if got := readLayouts(onB); fmt.Sprint(got) != fmt.Sprint(walls) {
		t.Fatalf("layouts through B: %+v, want %+v", got, walls)
	}
	walls.Current = ""
	if resp, body := onB.do(http.MethodPut, "/api/v1/me/layouts", walls); resp.StatusCode != http.StatusOK {
		t.Fatalf("layouts through B: %d %s", resp.StatusCode, body)
	}
	if got := readLayouts(onA); got.Current != "" || len(got.Layouts) != 1 {
		t.Fatalf("layouts through A after B's change: %+v", got)
	}

	// The shared database's disk full: refused with 507 on either replica.
	ctx, cancel := pgCtx()
	defer cancel()
	if _, err := a.alertStore.(*PGStore).pool.Exec(ctx, `
		CREATE FUNCTION test_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full';
		END $$;
		CREATE TRIGGER f BEFORE INSERT OR UPDATE ON bookmarks FOR EACH ROW EXECUTE FUNCTION test_disk_full();
		CREATE TRIGGER f BEFORE INSERT OR UPDATE ON console_layouts FOR EACH ROW EXECUTE FUNCTION test_disk_full();`); err != nil {
		t.Fatal(err)
	}
	if resp, body := onB.do(http.MethodPost, "/api/v1/bookmarks", map[string]any{"edge": northID, "camera": "gate-cam", "at": at, "note": "full"}); resp.StatusCode != http.StatusInsufficientStorage {
		t.Errorf("bookmark on a full database: %d %s, want 507", resp.StatusCode, body)
	}
	if resp, body := onA.do(http.MethodPut, "/api/v1/me/layouts", walls); resp.StatusCode != http.StatusInsufficientStorage {
		t.Errorf("layouts on a full database: %d %s, want 507", resp.StatusCode, body)
	}
}

// TestReplicasShareDeviceNames: the names an edge connected to A
// reports are shown by B, and a rename too.
func TestReplicasShareDeviceNames(t *testing.T) {
	pg := postgres.Start(t)
	url := pg.CreateDB(t, "names")
	keys := t.TempDir()
	a, b := startReplica(t, url, keys), startReplica(t, url, keys)
	e := connectEdge(t, a, northID, northToken)
	e.send(wire.TypeHeartbeat, namedHeartbeat("r1", "Lane in", "Barrier arm"))
	camName := func(s *Server) string {
		for _, c := range edgeStatus(t, s, northID).Cameras {
			if c.ID == "cam-a" {
				return c.Name
			}
		}
		return ""
	}
	eventually(t, "A's names on B", func() bool { return camName(b) == "Lane in" })
	if st := edgeStatus(t, b, northID); len(st.Gates) != 1 || st.Gates[0].Name != "Barrier arm" {
		t.Fatalf("B's gates of north: %+v", st.Gates)
	}
	e.send(wire.TypeHeartbeat, namedHeartbeat("r2", "Lane in (east)", "Barrier arm"))
	eventually(t, "the rename on A shown by B", func() bool { return camName(b) == "Lane in (east)" })
	if d := b.edges.names.devices(northID); d.Revision != "r2" || len(d.Devices) != 3 {
		t.Fatalf("B's device list of north: %+v", d)
	}
	// A replica started later reads them from the database.
	c := startReplica(t, url, keys)
	if n := c.edges.names.name(northID, "", DeviceCamera, "cam-a"); n != "Lane in (east)" {
		t.Fatalf("a third replica's name of cam-a: %q", n)
	}
}

// TestReplicasStoreASensorBatchOnce: readings an edge sends to A are in
// B's history; the edge, moved to B, re-sends the batch (its ack was
// lost): acknowledged, not stored twice.
func TestReplicasStoreASensorBatchOnce(t *testing.T) {
	pg := postgres.Start(t)
	url := pg.CreateDB(t, "sensors")
	keys := t.TempDir()
	a, b := startReplica(t, url, keys), startReplica(t, url, keys)
	onB := signIn(t, b, "ann", RoleGuard)
	start := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Minute)
	batch := wire.SensorBatch{ID: "sb-1", Points: readings("gas-kitchen", start, 10*time.Second, 1, 2, 3, 4, 5, 6)}

	e := connectEdge(t, a, northID, northToken)
	e.send(wire.TypeSensorBatch, batch)
	e.expectAck(batch.ID)
	raw := sensorHistory(t, onB, northID, "gas-kitchen", start, start.Add(time.Hour))
	if raw.Step != "raw" || len(raw.Points) != 6 || raw.Points[5].V != 6 {
		t.Fatalf("B's raw history of A's batch: %+v", raw)
	}
	e.ws.Close()

	e = connectEdge(t, b, northID, northToken)
	e.send(wire.TypeSensorBatch, batch)
	e.expectAck(batch.ID)
	e.send(wire.TypeSensorBatch, wire.SensorBatch{ID: "sb-2", Points: readings("gas-kitchen", start.Add(time.Minute), 10*time.Second, 10)})
	e.expectAck("sb-2")
	if got := sensorHistory(t, onB, northID, "gas-kitchen", start, start.Add(time.Hour)); len(got.Points) != 7 {
		t.Fatalf("raw history after the re-send to B: %d points, want 7: %+v", len(got.Points), got.Points)
	}
	onA := &browser{t: t, s: a, cookie: onB.cookie}
	mins := sensorHistory(t, onA, northID, "gas-kitchen", start.Add(-5*time.Hour), start.Add(time.Hour))
	want := []sensorPoint{{T: start, V: 3.5, Min: 1, Max: 6, N: 6}, {T: start.Add(time.Minute), V: 10, Min: 10, Max: 10, N: 1}}
	if mins.Step != "1m" || len(mins.Points) != 2 || mins.Points[0] != want[0] || mins.Points[1] != want[1] {
		t.Fatalf("A's minutes: %+v, want %+v", mins, want)
	}
}
