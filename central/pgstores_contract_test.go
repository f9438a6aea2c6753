package central

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/kv"
	"github.com/vigil-perimeter/vigil/internal/testrig/postgres"
	"github.com/vigil-perimeter/vigil/wire"
)

// The stores of bookmarks, layouts, device names and sensor readings
// have two implementations: central's Badger database and PostgreSQL
// shared by replicas. The same checks run against both, so the API
// answers alike whichever store a central uses.

// sideStores are one central's stores beside the alerts.
type sideStores struct {
	marks    bookmarkStore
	walls    layoutStore
	names    deviceNameStore
	readings func(now func() time.Time) sensorStore
	// diskFull makes the store's writes fail as on a full disk (nil:
	// the Badger floor, checked by diskfull_test.go).
	diskFull func(t *testing.T)
}

// sideStoreOpeners: each opener gives a new, empty set of stores; the
// PostgreSQL server is the whole test's (top), a database for each.
func sideStoreOpeners(top *testing.T) map[string]func(t *testing.T) sideStores {
	var pg *postgres.Server
	n := 0
	return map[string]func(t *testing.T) sideStores{
		"badger": func(t *testing.T) sideStores {
			st, err := OpenStoreWith(StoreOptions{Dir: t.TempDir(), Log: testLogger(), MinFree: -1})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return sideStores{
				marks: badgerBookmarks{db: st.db, disk: st.diskGuard},
				walls: badgerLayouts{db: st.db, disk: st.diskGuard},
				names: badgerDevices{st.db},
				readings: func(now func() time.Time) sensorStore {
					return badgerSensors{db: st.db, disk: st.diskGuard, now: now}
				},
			}
		},
		"postgres": func(t *testing.T) sideStores {
			if pg == nil {
				pg = postgres.Start(top)
			}
			n++
			s := openTestPGStore(t, pg, 100+n)
			return sideStores{
				marks: pgBookmarks{s}, walls: pgLayouts{s}, names: s,
				readings: func(now func() time.Time) sensorStore { return newPGSensors(s, now) },
				diskFull: func(t *testing.T) {
					ctx, cancel := pgCtx()
					defer cancel()
					_, err := s.pool.Exec(ctx, `
						CREATE FUNCTION test_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
						BEGIN
							RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full';
						END $$;
						CREATE TRIGGER f BEFORE INSERT OR UPDATE ON bookmarks FOR EACH ROW EXECUTE FUNCTION test_disk_full();
						CREATE TRIGGER f BEFORE INSERT OR UPDATE ON console_layouts FOR EACH ROW EXECUTE FUNCTION test_disk_full();
						CREATE TRIGGER f BEFORE INSERT OR UPDATE ON sensor_batches FOR EACH ROW EXECUTE FUNCTION test_disk_full();`)
					if err != nil {
						t.Fatal(err)
					}
				},
			}
		},
	}
}

func TestSideStoresContract(t *testing.T) {
	for name, open := range sideStoreOpeners(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("bookmarks", func(t *testing.T) { contractBookmarks(t, open(t).marks) })
			t.Run("layouts", func(t *testing.T) { contractLayouts(t, open(t).walls) })
			t.Run("device names", func(t *testing.T) { contractDeviceNames(t, open(t).names) })
			t.Run("sensors", func(t *testing.T) { contractSensors(t, open(t)) })
			t.Run("disk full", func(t *testing.T) {
				st := open(t)
				if st.diskFull == nil {
					return // Badger's floor: diskfull_test.go
				}
				contractSideDiskFull(t, st)
			})
		})
	}
}

func bookmarkIDs(bs []Bookmark) []string {
	out := []string{}
	for _, b := range bs {
		out = append(out, b.ID)
	}
	return out
}

func contractBookmarks(t *testing.T, bs bookmarkStore) {
	if got, err := bs.bookmarks(bookmarkQuery{Limit: 10}); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("empty store: %v, %v; want an empty list", got, err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, m := range []int{5, 1, 9, 3, 7} {
		cam := "gate"
		if m == 7 {
			cam = "yard"
		}
		edge := northID
		if m == 9 {
			edge = southID
		}
		b := Bookmark{ID: fmt.Sprint("b", m), Edge: edge, Camera: cam, At: t0.Add(time.Duration(m) * time.Minute),
			Note: fmt.Sprint("Note ", m), User: "ann", Created: t0}
		if err := bs.addBookmark(b); err != nil {
			t.Fatal(err)
		}
	}
	// Two at one moment: the later ID first, as Badger's key order has it.
	same := t0.Add(5 * time.Minute)
	if err := bs.addBookmark(Bookmark{ID: "b5z", Edge: northID, Camera: "gate", At: same, Note: "van"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		q    bookmarkQuery
		want []string
	}{
		{bookmarkQuery{Limit: 10}, []string{"b9", "b7", "b5z", "b5", "b3", "b1"}},
		{bookmarkQuery{Limit: 2}, []string{"b9", "b7"}},
		{bookmarkQuery{From: t0.Add(3 * time.Minute), To: t0.Add(9 * time.Minute), Limit: 10}, []string{"b7", "b5z", "b5", "b3"}},
		{bookmarkQuery{To: same, Limit: 10}, []string{"b3", "b1"}},
		{bookmarkQuery{Edge: southID, Limit: 10}, []string{"b9"}},
		{bookmarkQuery{Camera: "yard", Limit: 10}, []string{"b7"}},
		{bookmarkQuery{Text: "NOTE 3", Limit: 10}, []string{"b3"}},
		{bookmarkQuery{Text: "VAN", Edge: northID, Camera: "gate", Limit: 10}, []string{"b5z"}},
	} {
		got, err := bs.bookmarks(c.q)
		if err != nil || !slices.Equal(bookmarkIDs(got), c.want) {
			t.Errorf("%+v: %v, %v; want %v", c.q, bookmarkIDs(got), err, c.want)
		}
	}
	got, _ := bs.bookmarks(bookmarkQuery{Edge: southID, Limit: 1})
	want := Bookmark{ID: "b9", Edge: southID, Camera: "gate", At: t0.Add(9 * time.Minute), Note: "Note 9", User: "ann", Created: t0}
	if len(got) != 1 || got[0] != want {
		t.Errorf("stored bookmark: %+v, want %+v", got, want)
	}
}

func contractLayouts(t *testing.T, ls layoutStore) {
	got, err := ls.layouts("ann")
	if err != nil || got.Layouts == nil || len(got.Layouts) != 0 || got.Current != "" {
		t.Fatalf("no layouts yet: %+v, %v", got, err)
	}
	walls := Layouts{Layouts: []Layout{{Name: "Gates", Grid: 4, Tiles: []string{northID + "/gate", "", southID + "/gate"}}}, Current: "Gates"}
	if err := ls.setLayouts("ann", walls); err != nil {
		t.Fatal(err)
	}
	if got, err := ls.layouts("ann"); err != nil || fmt.Sprint(got) != fmt.Sprint(walls) {
		t.Fatalf("ann's layouts: %+v, %v; want %+v", got, err, walls)
	}
	if got, err := ls.layouts("bob"); err != nil || len(got.Layouts) != 0 {
		t.Fatalf("bob's layouts: %+v, %v; want none", got, err)
	}
	walls2 := Layouts{Layouts: []Layout{{Name: "One", Grid: 1, Tiles: []string{}}}}
	if err := ls.setLayouts("ann", walls2); err != nil {
		t.Fatal(err)
	}
	if got, err := ls.layouts("ann"); err != nil || fmt.Sprint(got) != fmt.Sprint(walls2) {
		t.Fatalf("ann's layouts replaced: %+v, %v; want %+v", got, err, walls2)
	}
}

func contractDeviceNames(t *testing.T, ns deviceNameStore) {
	d1 := EdgeDevices{Revision: "r1", Reported: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		Devices: []DeviceName{{ID: "cam-1", Kind: DeviceCamera, Name: "North gate"}, {ID: "g-1", Kind: DeviceGate, Name: "Barrier"}}}
	d2 := EdgeDevices{Reported: d1.Reported.Add(time.Hour), Devices: []DeviceName{{ID: "cam-1", Kind: DeviceCamera, Name: "South gate"}}}
	if err := ns.putDevices(northID, EdgeDevices{Devices: []DeviceName{{ID: "x", Kind: DeviceCamera, Name: "old"}}}); err != nil {
		t.Fatal(err)
	}
	for id, d := range map[string]EdgeDevices{northID: d1, southID: d2} {
		if err := ns.putDevices(id, d); err != nil {
			t.Fatal(err)
		}
	}
	b, err := openDeviceBook(ns, nil, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if got := b.devices(northID); fmt.Sprint(got) != fmt.Sprint(d1) {
		t.Errorf("north: %+v, want %+v", got, d1)
	}
	if n := b.name(southID, "", DeviceCamera, "cam-1"); n != "South gate" {
		t.Errorf("south cam-1: %q", n)
	}
	// A heartbeat's new names reach the store: a book opened afterwards has them.
	b.report(southID, "r2", &wire.Heartbeat{Cameras: []wire.CameraStatus{{ID: "cam-1", Name: "Back gate"}}})
	b2, err := openDeviceBook(ns, nil, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if n := b2.name(southID, "", DeviceCamera, "cam-1"); n != "Back gate" {
		t.Errorf("south cam-1 after the heartbeat, reopened: %q", n)
	}
}

func contractSensors(t *testing.T, st sideStores) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	if d := time.Since(now); d > 0 {
		now = now.Add(d.Truncate(24 * time.Hour)) // near the real clock: keeping times are real
	}
	s := st.readings(func() time.Time { return now })
	start := now.Add(-90 * time.Minute).Truncate(15 * time.Minute)
	pts := readings("gas", start, 20*time.Second, 1, 2, 3, 4, 5, 6, 7, 8, 9) // 3 minutes, 3 a minute
	// Down-sampled by the edge: into the minutes, not the raw readings.
	pts = append(pts, wire.SensorPoint{Sensor: "gas", Time: start.Add(20 * time.Minute), Value: 10, Min: 0, Max: 30, Count: 4})
	// Older than the raw readings are kept: a minute only.
	pts = append(pts, wire.SensorPoint{Sensor: "gas", Time: now.Add(-30 * time.Hour), Value: 42})
	// Older than minutes are kept: nothing.
	pts = append(pts, wire.SensorPoint{Sensor: "gas", Time: now.Add(-40 * 24 * time.Hour), Value: 99})
	pts = append(pts, wire.SensorPoint{Sensor: "bad\x00name", Time: start, Value: 1})
	if added, err := s.addBatch(northID, &wire.SensorBatch{ID: "b-1", Points: pts}); err != nil || !added {
		t.Fatalf("first batch: %v, %v", added, err)
	}
	if added, err := s.addBatch(northID, &wire.SensorBatch{ID: "b-1", Points: pts}); err != nil || added {
		t.Fatalf("re-sent batch: %v, %v; want false, nil", added, err)
	}
	// The same batch ID from another edge is another batch.
	if added, err := s.addBatch(southID, &wire.SensorBatch{ID: "b-1", Points: readings("gas", start, time.Second, 100)}); err != nil || !added {
		t.Fatalf("south's b-1: %v, %v", added, err)
	}
	// A batch bigger than a part: stored whole once.
	var big []wire.SensorPoint
	for i := range 2*sensorPartPoints + 500 {
		big = append(big, wire.SensorPoint{Sensor: "co", Time: start.Add(time.Duration(i) * time.Second), Value: float64(i % 10)})
	}
	for i, want := range []bool{true, false} {
		if added, err := s.addBatch(northID, &wire.SensorBatch{ID: "big", Points: big}); err != nil || added != want {
			t.Fatalf("big batch, send %d: %v, %v; want %v", i, added, err, want)
		}
	}

	raw, err := s.history(northID, "gas", start, start.Add(time.Minute), stepRaw)
	if err != nil || len(raw) != 3 || raw[0] != (sensorPoint{T: start, V: 1, Min: 1, Max: 1, N: 1}) || raw[2].V != 3 {
		t.Fatalf("raw [start, +1m): %+v, %v", raw, err)
	}
	if raw, _ := s.history(northID, "gas", start, start.Add(25*time.Minute), stepRaw); len(raw) != 9 {
		t.Errorf("raw: %d readings, want 9 (the down-sampled point is no reading)", len(raw))
	}
	mins, err := s.history(northID, "gas", start, start.Add(time.Hour), stepMinute)
	wantMins := []sensorPoint{
		{T: start, V: 2, Min: 1, Max: 3, N: 3},
		{T: start.Add(time.Minute), V: 5, Min: 4, Max: 6, N: 3},
		{T: start.Add(2 * time.Minute), V: 8, Min: 7, Max: 9, N: 3},
		{T: start.Add(20 * time.Minute), V: 10, Min: 0, Max: 30, N: 4},
	}
	if err != nil || !slices.Equal(mins, wantMins) {
		t.Fatalf("1m: %+v, %v; want %+v", mins, err, wantMins)
	}
	qs, err := s.history(northID, "gas", start, start.Add(time.Hour), stepQuarter)
	wantQs := []sensorPoint{{T: start, V: 5, Min: 1, Max: 9, N: 9}, {T: start.Add(15 * time.Minute), V: 10, Min: 0, Max: 30, N: 4}}
	if err != nil || !slices.Equal(qs, wantQs) {
		t.Fatalf("15m: %+v, %v; want %+v", qs, err, wantQs)
	}
	old, err := s.history(northID, "gas", now.Add(-31*time.Hour), now.Add(-29*time.Hour), stepMinute)
	if err != nil || len(old) != 1 || old[0].V != 42 {
		t.Errorf("the minute of a reading 30 h old: %+v, %v", old, err)
	}
	if old, _ := s.history(northID, "gas", now.Add(-31*time.Hour), now.Add(-29*time.Hour), stepRaw); len(old) != 0 {
		t.Errorf("raw reading 30 h old kept: %+v", old)
	}
	if old, _ := s.history(northID, "gas", now.Add(-41*24*time.Hour), now.Add(-39*24*time.Hour), stepMinute); len(old) != 0 {
		t.Errorf("a minute 40 days old kept: %+v", old)
	}
	if south, _ := s.history(southID, "gas", start, start.Add(time.Hour), stepMinute); len(south) != 1 || south[0].V != 100 {
		t.Errorf("south's gas: %+v", south)
	}
	co, err := s.history(northID, "co", start, start.Add(time.Hour), stepMinute)
	n := 0
	for _, p := range co {
		n += p.N
	}
	if err != nil || n != len(big) || co[0] != (sensorPoint{T: start, V: 4.5, Min: 0, Max: 9, N: 60}) {
		t.Errorf("co stored once: %d readings in %d minutes (%v), first %+v; want %d", n, len(co), err, co[0], len(big))
	}
	if bad, _ := s.history(northID, "bad\x00name", start, start.Add(time.Hour), stepMinute); len(bad) != 0 {
		t.Errorf("a sensor name with NUL stored: %+v", bad)
	}
	if math.IsNaN(qs[0].V) {
		t.Error("NaN mean")
	}
}

// contractSideDiskFull: a full disk refuses the writes with an error
// that is kv.ErrDiskFull (the API's 507), and changes nothing.
func contractSideDiskFull(t *testing.T, st sideStores) {
	st.diskFull(t)
	if err := st.marks.addBookmark(Bookmark{ID: "b", Edge: northID, Camera: "c", At: time.Now()}); !errors.Is(err, kv.ErrDiskFull) {
		t.Errorf("bookmark on a full disk: %v", err)
	}
	if err := st.walls.setLayouts("ann", Layouts{Layouts: []Layout{}}); !errors.Is(err, kv.ErrDiskFull) {
		t.Errorf("layouts on a full disk: %v", err)
	}
	s := st.readings(time.Now)
	if _, err := s.addBatch(northID, &wire.SensorBatch{ID: "b", Points: readings("gas", time.Now().Add(-time.Minute), time.Second, 1)}); !errors.Is(err, kv.ErrDiskFull) {
		t.Errorf("sensor batch on a full disk: %v", err)
	}
	if got, err := s.history(northID, "gas", time.Now().Add(-time.Hour), time.Now(), stepRaw); err != nil || len(got) != 0 {
		t.Errorf("after the refused batch: %+v, %v", got, err)
	}
}
