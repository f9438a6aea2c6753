package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/edge/outbox"
	"github.com/vigil-perimeter/vigil/edge/uplink"
	"github.com/vigil-perimeter/vigil/internal/kv"
	"github.com/vigil-perimeter/vigil/wire"
)

// fleet is many simulated edges in this process: each a real outbox and a
// real uplink with its own enrolled key, over a real TLS websocket to
// central. The outboxes live in a few shared Badger databases (fsync on
// every write, as on a box): one database per edge would need gigabytes,
// and one for all would serialise every edge's fsync behind the others',
// which no real edge (with its own disk) suffers.
type fleet struct {
	dbs      []*badger.DB
	edges    []*simEdge
	snapshot []byte
	log      *slog.Logger

	mu    sync.Mutex
	acked map[string]bool // every ID central acknowledged (restart check)

	appendErrs atomic.Int64
	appendMu   sync.Mutex
	appendLat  histogram // outbox write (fsync) per alert
}

type simEdge struct {
	mu      sync.Mutex
	durable []int64 // per alert number: when its outbox write returned (unix ns)

	idx    int
	id     string
	cred   uplink.Credential
	box    *outbox.Outbox
	up     *uplink.Uplink
	raised atomic.Uint32 // alerts raised so far; the next alert's number
	cancel context.CancelFunc
	done   chan struct{}
}

func edgeName(i int) string { return fmt.Sprintf("e%04d", i) }

// alertID encodes the edge and the alert's number so consoles can check
// order, loss and duplicates per edge without storing IDs.
func alertID(edge int, n uint32) string { return fmt.Sprintf("e%04d-%07d", edge, n) }

func parseAlertID(id string) (edge int, n uint32, ok bool) {
	var e, m int
	if _, err := fmt.Sscanf(id, "e%04d-%07d", &e, &m); err != nil {
		return 0, 0, false
	}
	return e, uint32(m), true
}

// newFleet enrols n edges at central through its admin API and the real
// enrolment endpoint.
func newFleet(p *centralProc, n, shards int, dir string, snapshotBytes int, log *slog.Logger) (*fleet, error) {
	f := &fleet{snapshot: make([]byte, snapshotBytes), log: log, acked: map[string]bool{}}
	for i := range shards {
		db, err := kv.Open(kv.Options{Dir: filepath.Join(dir, fmt.Sprintf("edges-%02d", i)), SyncWrites: true, Logger: log})
		if err != nil {
			f.closeDBs()
			return nil, err
		}
		f.dbs = append(f.dbs, db)
	}
	for i := range f.snapshot {
		f.snapshot[i] = byte(rand.N(256))
	}
	f.edges = make([]*simEdge, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cred, err := enrolOne(p, edgeName(i))
			if err != nil {
				errs <- err
				return
			}
			box, err := outbox.OpenWith(outbox.Options{DB: f.dbs[i%len(f.dbs)], Namespace: edgeName(i) + "/", Log: log})
			if err != nil {
				errs <- err
				return
			}
			f.edges[i] = &simEdge{idx: i, id: edgeName(i), cred: cred, box: box}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		f.closeDBs()
		return nil, err
	}
	return f, nil
}

func enrolOne(p *centralProc, id string) (uplink.Credential, error) {
	body, _ := json.Marshal(map[string]string{"edge_id": id, "site_id": "bench/village/wall/" + id, "actor": "bench"})
	req, _ := http.NewRequest(http.MethodPost, "http://"+p.api+"/api/v1/enrolment-tokens", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+p.adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return uplink.Credential{}, err
	}
	defer resp.Body.Close()
	var tr struct {
		Token string `json:"token"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || tr.Token == "" {
		return uplink.Credential{}, fmt.Errorf("token for %s: %s %v", id, tr.Error, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return uplink.Enroll(ctx, uplink.EnrolOptions{Central: "https://" + p.hub, Token: tr.Token, Software: "bench"})
}

// start runs every edge's uplink against url (central's hub, or a proxy).
func (f *fleet) start(url string) {
	for _, e := range f.edges {
		cfg := uplink.Config{URL: url, Credential: &e.cred, EdgeID: e.id, Software: "bench",
			BackoffMin: 200 * time.Millisecond, BackoffMax: 2 * time.Second, Window: 32,
			OnAck: f.onAck}
		e.up = uplink.New(cfg, e.box, nil, nil, f.log)
		ctx, cancel := context.WithCancel(context.Background())
		e.cancel, e.done = cancel, make(chan struct{})
		go func() { defer close(e.done); e.up.Run(ctx) }()
	}
}

func (f *fleet) onAck(ids []string) {
	f.mu.Lock()
	for _, id := range ids {
		f.acked[id] = true
	}
	f.mu.Unlock()
}

func (f *fleet) connected() int {
	n := 0
	for _, e := range f.edges {
		if e.up != nil && e.up.Connected() {
			n++
		}
	}
	return n
}

// pending is every alert still in an outbox.
func (f *fleet) pending() int {
	n := 0
	for _, e := range f.edges {
		n += e.box.Len()
	}
	return n
}

func (f *fleet) raisedTotal() uint64 {
	var n uint64
	for _, e := range f.edges {
		n += uint64(e.raised.Load())
	}
	return n
}

// raise makes the fleet raise rate alerts per second in total, spread
// evenly over the edges (each its own timer, at a random phase), until
// ctx ends. Every fifth alert is red, the rest yellow: the outbox never
// drops either, so every one must arrive.
func (f *fleet) raise(ctx context.Context, rate float64) {
	every := time.Duration(float64(len(f.edges)) / rate * float64(time.Second))
	var wg sync.WaitGroup
	for _, e := range f.edges {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-ctx.Done():
				return
			case <-time.After(rand.N(every)):
			}
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				n := e.raised.Load()
				sev := wire.Yellow
				if n%5 == 0 {
					sev = wire.Red
				}
				a := wire.Alert{ID: alertID(e.idx, n), EdgeID: e.id, Source: "cam-1", Kind: "motion", Severity: sev,
					Time: time.Now().UTC(), TimeSource: "arrival", Summary: "bench alert", Snapshot: f.snapshot}
				err := e.box.Append(a)
				now := time.Now()
				took := now.Sub(a.Time)
				if err != nil {
					f.appendErrs.Add(1)
				} else {
					e.mu.Lock()
					e.durable = append(e.durable, now.UnixNano())
					e.mu.Unlock()
					e.raised.Add(1)
				}
				f.appendMu.Lock()
				f.appendLat.add(took)
				f.appendMu.Unlock()
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	wg.Wait()
}

// durableAt is when alert n of edge i was durably queued on the edge.
func (f *fleet) durableAt(i int, n uint32) (time.Time, bool) {
	if i < 0 || i >= len(f.edges) {
		return time.Time{}, false
	}
	e := f.edges[i]
	e.mu.Lock()
	defer e.mu.Unlock()
	if int(n) >= len(e.durable) {
		return time.Time{}, false // the raising goroutine has not noted it yet
	}
	return time.Unix(0, e.durable[n]), true
}

// resetCounts forgets append latencies.
func (f *fleet) resetCounts() {
	f.appendMu.Lock()
	f.appendLat = histogram{}
	f.appendMu.Unlock()
}

// close stops every uplink and the shared database.
func (f *fleet) close() {
	for _, e := range f.edges {
		if e.cancel != nil {
			e.cancel()
		}
	}
	for _, e := range f.edges {
		if e.done != nil {
			<-e.done
		}
		e.box.Close()
	}
	f.closeDBs()
}

func (f *fleet) closeDBs() {
	for _, db := range f.dbs {
		db.Close()
	}
}
