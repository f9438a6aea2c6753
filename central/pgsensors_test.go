package central

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/testrig/postgres"
	"github.com/vigil-perimeter/vigil/wire"
)

// TestPGSensorBatchRaceStoredOnce: two replicas take the same batches at
// once (an edge re-sent them to the other while the first was storing):
// each part of a batch is stored by exactly one (a batch of three parts
// may be stored partly by each, and then both report it stored), so
// every minute counts each reading once and no reading is lost.
func TestPGSensorBatchRaceStoredOnce(t *testing.T) {
	pg := postgres.Start(t)
	url := pg.CreateDB(t, "race")
	var stores [2]sensorStore
	for i := range stores {
		s, err := OpenPGStore(context.Background(), url, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = newPGSensors(s, time.Now)
	}
	start := time.Now().UTC().Add(-30 * time.Minute).Truncate(time.Minute)
	const batches = 20
	var pts [batches][]wire.SensorPoint
	for i := range batches {
		// Every batch folds into the same minutes: the rows both replicas update.
		for j := range 2*sensorPartPoints + 10 {
			pts[i] = append(pts[i], wire.SensorPoint{Sensor: "gas", Time: start.Add(time.Duration(j)*time.Millisecond + time.Duration(i)*time.Microsecond), Value: 1})
		}
	}
	var stored [batches][2]bool
	var wg sync.WaitGroup
	for r, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range batches {
				added, err := s.addBatch(northID, &wire.SensorBatch{ID: "b" + string(rune('a'+i)), Points: pts[i]})
				if err != nil {
					t.Errorf("replica %d, batch %d: %v", r, i, err)
				}
				stored[i][r] = added
			}
		}()
	}
	wg.Wait()
	for i, s := range stored {
		if !s[0] && !s[1] {
			t.Errorf("batch %d stored by neither replica", i)
		}
	}
	got, err := stores[0].history(northID, "gas", start, start.Add(time.Hour), stepMinute)
	want := batches * (2*sensorPartPoints + 10)
	if err != nil || len(got) != 1 || got[0].N != want || got[0].V != 1 {
		t.Fatalf("minutes: %+v, %v; want one minute of %d readings", got, err, want)
	}
	raw, err := stores[1].history(northID, "gas", start, start.Add(time.Hour), stepRaw)
	if err != nil || len(raw) != want {
		t.Fatalf("raw readings: %d, %v; want %d", len(raw), err, want)
	}
}
