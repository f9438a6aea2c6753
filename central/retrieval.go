package central

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigil-perimeter/vigil/central/evidence"
	"github.com/vigil-perimeter/vigil/wire"
)

// Evidence retrieval: a police liaison's request names cameras and a time
// window; central fetches each camera's range from its edge over the
// uplink and keeps a verified copy in its data directory.
//
// Per camera (an item of the request): the edge first describes the
// deterministic MP4 export of the range (export_info: size, SHA-256 of
// the whole and of every chunk) and pins it; central then fetches the
// export chunk by chunk (export_range), checks every chunk against its
// stated hash before writing it, and records the number of verified
// chunks durably after each one, so a dropped link or a central restart
// resumes at the first unverified chunk. A chunk that fails its hash is
// fetched again. When the whole file on disk matches the stated SHA-256
// the item is ready and the edge is told it may release its pins
// (release). One worker per edge works through that edge's items in
// request order; while the edge is offline its items wait and are
// fetched when it reconnects.
//
// An MP4 holds one codec at one picture size. Where a camera changed
// either inside the range (reconfigured, or replaced), the edge's export
// stops at the change and its description names where the rest starts
// (Next): central then adds an item for the rest, a part of its own with
// its own range, file, pin and progress, stored with the first part's
// description in one write so that a restart resumes it like any other.
// The parts of a camera's range release their pins together, once all
// of them are at central: until then the first part's pin holds the
// rest of the range on the edge.

// Item statuses.
const (
	RetrievalQueued   = "queued"
	RetrievalWaiting  = "waiting_for_edge"
	RetrievalFetching = "fetching"
	RetrievalReady    = "ready"
	RetrievalFailed   = "failed"
)

// prefixEvidence keys evidence requests in central's store.
const prefixEvidence = "ev/" // ev/<request id> → EvidenceRequest JSON

const (
	exportInfoTimeout   = 10 * time.Minute // the edge hashes the whole export first
	exportRangeTimeout  = 2 * time.Minute
	contactSheetTimeout = 10 * time.Minute // the edge writes the export out and decodes it
	releaseTimeout      = 30 * time.Second
	maxChunkRetries     = 3  // a chunk failing its hash this often: ask the edge to describe the export again
	maxRedescribes      = 1  // then give up
	maxTransient        = 20 // edge errors in a row (not link losses) before an item fails
)

// EvidenceRequest is one liaison's request, as stored and as the API
// shows it.
type EvidenceRequest struct {
	ID            string          `json:"id"`
	CaseNumber    string          `json:"case_number"`
	Reason        string          `json:"reason"`
	Requester     string          `json:"requester"`
	RequesterRole string          `json:"requester_role"`
	SharedWith    []string        `json:"shared_with,omitempty"` // who else may see it (canSeeEvidence)
	CreatedAt     time.Time       `json:"created_at"`
	From          time.Time       `json:"from"`
	To            time.Time       `json:"to"`
	Status        string          `json:"status"`  // of the items together
	Percent       int             `json:"percent"` // mean of the items' percentages
	Items         []RetrievalItem `json:"items"`
	UpdatedAt     time.Time       `json:"updated_at"`
}

// RetrievalItem is one camera's range of a request, or one part of it.
type RetrievalItem struct {
	Edge   string `json:"edge"`
	Camera string `json:"camera"`
	SiteID string `json:"site_id,omitempty"`
	// Part numbers the exports of one camera's range: 0 for the first
	// (usually the only one), n for the export after the camera's nth
	// change of codec or picture size in the range. Later parts are
	// items of their own, added as the part before is described.
	Part int `json:"part,omitempty"`
	// From..To is the range asked of the edge: the request's, or for a
	// later part from the change (the part before's Export.Next) to the
	// request's end. Zero in items stored before parts existed: the
	// request's range.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`

	Status  string `json:"status"`
	Detail  string `json:"detail,omitempty"` // why it waits or failed
	Percent int    `json:"percent"`
	// The export as the edge described it (chunk hashes left out of API
	// answers): actual UTC range, codec, resolution, frames, size,
	// SHA-256, the edge's clock offset and its source.
	Export *wire.ExportManifest `json:"export,omitempty"`
	// Central's own measure of the edge's clock (central minus edge, at
	// the edge's hello) when the export was described.
	CentralClockOffsetMS     int64  `json:"central_clock_offset_ms"`
	CentralClockOffsetSource string `json:"central_clock_offset_source,omitempty"`

	ChunksVerified int       `json:"chunks_verified"`
	ChunksTotal    int       `json:"chunks_total"`
	ChunksFetched  int       `json:"chunks_fetched"`  // fetches, re-fetches included
	ChunksRejected int       `json:"chunks_rejected"` // fetched chunks that failed their hash
	Redescribed    int       `json:"redescribed,omitempty"`
	File           string    `json:"file,omitempty"`   // under central's data dir, once ready
	SHA256         string    `json:"sha256,omitempty"` // of the file at central, checked against the edge's
	Size           int64     `json:"size,omitempty"`
	ReadyAt        time.Time `json:"ready_at,omitzero"`
	PinsReleased   bool      `json:"pins_released"`
	ReleasedPins   []string  `json:"released_pins,omitempty"`
	FailedAttempts int       `json:"failed_attempts,omitempty"` // edge errors in a row
	// The contact sheet the edge made of the export (fetchSheet), under
	// central's data dir, and its SHA-256; or, where there is none, why.
	ContactSheet       string `json:"contact_sheet,omitempty"`
	ContactSheetSHA256 string `json:"contact_sheet_sha256,omitempty"`
	ContactSheetNote   string `json:"contact_sheet_note,omitempty"`
}

// done reports whether the worker has nothing left to do for the item.
func (it *RetrievalItem) done() bool {
	return it.Status == RetrievalFailed || (it.Status == RetrievalReady && it.PinsReleased)
}

// itemRange is the range the item asks of the edge.
func (r *EvidenceRequest) itemRange(it *RetrievalItem) (from, to time.Time) {
	if it.From.IsZero() || it.To.IsZero() {
		return r.From, r.To
	}
	return it.From, it.To
}

// parts lists the indices of the items holding the same camera's range
// as item i (i included), in part order. A request names each camera
// once, so items of one edge and camera are the parts of its range.
func (r *EvidenceRequest) parts(i int) []int {
	var out []int
	for k, it := range r.Items {
		if it.Edge == r.Items[i].Edge && it.Camera == r.Items[i].Camera {
			out = append(out, k)
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return r.Items[out[a]].Part < r.Items[out[b]].Part })
	return out
}

// partsReady reports whether every part of item i's camera range is at
// central: only then may the edge release the range's pins.
func (r *EvidenceRequest) partsReady(i int) bool {
	for _, k := range r.parts(i) {
		if r.Items[k].Status != RetrievalReady || r.Items[k].Export == nil {
			return false
		}
	}
	return true
}

// workable reports whether the worker has something to do for item i
// now: not done, and not a part at central that waits for the other
// parts of its range before the pins are released.
func (r *EvidenceRequest) workable(i int) bool {
	it := &r.Items[i]
	return !it.done() && (it.Status != RetrievalReady || r.partsReady(i))
}

// overall is the request's status from its items: failed if any failed,
// ready when all are, else the furthest along of the rest.
func (r *EvidenceRequest) overall() string {
	n := map[string]int{}
	for _, it := range r.Items {
		n[it.Status]++
	}
	switch {
	case n[RetrievalFailed] > 0:
		return RetrievalFailed
	case n[RetrievalReady] == len(r.Items):
		return RetrievalReady
	case n[RetrievalFetching] > 0:
		return RetrievalFetching
	case n[RetrievalWaiting] > 0:
		return RetrievalWaiting
	}
	return RetrievalQueued
}

// view is the request as the API shows it: without the chunk hashes.
func (r EvidenceRequest) view() EvidenceRequest {
	r.Items = append([]RetrievalItem(nil), r.Items...)
	sum := 0
	for _, it := range r.Items {
		sum += it.Percent
	}
	if len(r.Items) > 0 {
		r.Percent = sum / len(r.Items)
	}
	for i := range r.Items {
		if e := r.Items[i].Export; e != nil {
			c := *e
			c.Chunks = nil
			r.Items[i].Export = &c
		}
	}
	return r
}

// retrieval runs the per-edge workers: each takes its edge's items in
// request order and fetches, verifies and keeps them (run), recording
// progress in the requests (requestBook).
type retrieval struct {
	*requestBook                 // the stored requests and their items
	ctx          context.Context // the server's: cancelled by Close
	edges        *edgeHub        // requests to the edges; their clocks and devices
	files        evidenceFiles   // where retrieved videos and contact sheets lie
	township     *TownshipConfig // names in contact sheet titles
	log          *slog.Logger
	dir          string
	set          retrievalSettings // chunk size, pauses, the tests' fault hook

	// elsewhere reports whether another replica holds the edge's
	// connection (nil: one central): that replica retrieves its items.
	elsewhere func(edge string) bool

	wmu     sync.Mutex
	workers map[string]chan struct{} // running worker per edge: its wake-up
	closed  bool
	wg      sync.WaitGroup
}

// newRetrieval makes the retrieval queue; its workers run under ctx and
// keep requests in store and files in files.
func newRetrieval(ctx context.Context, store requestStore, files evidenceFiles, edges *edgeHub, township *TownshipConfig, set retrievalSettings,
	log *slog.Logger) *retrieval {
	return &retrieval{requestBook: &requestBook{store: store}, ctx: ctx, edges: edges, files: files, township: township, set: set, log: log,
		workers: map[string]chan struct{}{}}
}

// start resumes every unfinished item (after a restart).
func (rt *retrieval) start() {
	reqs, err := rt.list()
	if err != nil {
		rt.log.Error("evidence: cannot list requests", "err", err)
		return
	}
	for _, r := range reqs {
		for _, it := range r.Items {
			if !it.done() {
				rt.ensure(it.Edge)
			}
		}
	}
}

// wait stops new workers and waits for the running ones (their context is
// the server's, cancelled by Close).
func (rt *retrieval) wait() {
	rt.wmu.Lock()
	rt.closed = true
	rt.wmu.Unlock()
	rt.wg.Wait()
}

// ensure wakes the edge's worker, starting one if none runs.
func (rt *retrieval) ensure(edge string) {
	rt.wmu.Lock()
	defer rt.wmu.Unlock()
	if rt.closed {
		return
	}
	if ch, ok := rt.workers[edge]; ok {
		select {
		case ch <- struct{}{}:
		default:
		}
		return
	}
	ch := make(chan struct{}, 1)
	rt.workers[edge] = ch
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		rt.work(edge, ch)
	}()
}

// create stores a new request and wakes the workers of its edges.
// newEvidenceID names a request: sortable by time, unguessable.
func newEvidenceID(now time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "ev-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

func (rt *retrieval) create(r EvidenceRequest) (EvidenceRequest, error) {
	now := time.Now().UTC()
	if r.ID == "" {
		r.ID = newEvidenceID(now)
	}
	r.CreatedAt, r.UpdatedAt = now, now
	for i := range r.Items {
		r.Items[i].From, r.Items[i].To = r.itemRange(&r.Items[i])
		r.Items[i].Status = RetrievalQueued
		if !rt.edges.connected(r.Items[i].Edge) {
			r.Items[i].Status = RetrievalWaiting
			r.Items[i].Detail = "the edge is offline; the range is fetched when it reconnects"
		}
	}
	r.Status = r.overall()
	if err := rt.add(r); err != nil {
		return EvidenceRequest{}, err
	}
	for _, it := range r.Items {
		rt.ensure(it.Edge)
	}
	return r, nil
}

// requestBook is the evidence requests' logic over their store.
type requestBook struct {
	store requestStore
}

// add stores a new request.
func (b *requestBook) add(r EvidenceRequest) error { return b.store.addRequest(r) }

// get reads a stored request.
func (b *requestBook) get(id string) (EvidenceRequest, error) { return b.store.getRequest(id) }

// list reads every stored request, oldest first.
func (b *requestBook) list() ([]EvidenceRequest, error) {
	out, err := b.store.listRequests()
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, err
}

// update changes one item of a stored request and stores it.
func (b *requestBook) update(id string, idx int, f func(*RetrievalItem)) (RetrievalItem, error) {
	return b.modify(id, idx, func(r *EvidenceRequest) { f(&r.Items[idx]) })
}

// modify changes a stored request (f may add items) and stores it;
// it returns item idx as stored.
func (b *requestBook) modify(id string, idx int, f func(*EvidenceRequest)) (RetrievalItem, error) {
	r, err := b.store.changeRequest(id, func(r *EvidenceRequest) error {
		if idx < 0 || idx >= len(r.Items) {
			return fmt.Errorf("evidence: request %s has no item %d", id, idx)
		}
		f(r)
		r.Status = r.overall()
		r.UpdatedAt = time.Now().UTC()
		return nil
	})
	if err != nil {
		return RetrievalItem{}, err
	}
	return r.Items[idx], nil
}

// share adds users to a stored request's shared_with.
func (b *requestBook) share(id string, users []string) (EvidenceRequest, error) {
	return b.store.changeRequest(id, func(r *EvidenceRequest) error {
		for _, u := range users {
			if !slices.Contains(r.SharedWith, u) {
				r.SharedWith = append(r.SharedWith, u)
			}
		}
		r.UpdatedAt = time.Now().UTC()
		return nil
	})
}

// job is one item a worker handles.
type job struct {
	req  EvidenceRequest
	idx  int
	item RetrievalItem
}

// next finds the edge's first item with work to do, in request order.
func (b *requestBook) next(edge string) (job, bool, error) {
	reqs, err := b.list()
	if err != nil {
		return job{}, false, err
	}
	for _, r := range reqs {
		for i, it := range r.Items {
			if it.Edge == edge && r.workable(i) {
				return job{req: r, idx: i, item: it}, true, nil
			}
		}
	}
	return job{}, false, nil
}

// pending lists the edge's unfinished items.
func (b *requestBook) pending(edge string) []job {
	reqs, _ := b.list()
	var out []job
	for _, r := range reqs {
		for i, it := range r.Items {
			if it.Edge == edge && !it.done() {
				out = append(out, job{req: r, idx: i, item: it})
			}
		}
	}
	return out
}

// Errors of one attempt.
type linkError struct{ msg string } // the edge is offline or the link dropped: wait, then resume

func (e linkError) Error() string { return e.msg }

type edgeError struct{ status, msg string } // the edge answered with an error

func (e edgeError) Error() string { return e.status + ": " + e.msg }

type fatalError struct{ msg string } // the item cannot be fetched

func (e fatalError) Error() string { return e.msg }

// work runs the edge's items until none is left.
func (rt *retrieval) work(edge string, wake chan struct{}) {
	ctx := rt.ctx
	log := rt.log.With("edge_id", edge)
	sleep := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-wake:
		case <-t.C:
		}
		return true
	}
	for ctx.Err() == nil {
		j, ok, err := rt.next(edge)
		if err != nil {
			log.Error("evidence: reading requests", "err", err)
			if !sleep(rt.set.retry) {
				return
			}
			continue
		}
		if !ok {
			if rt.retire(edge, wake) {
				return
			}
			continue
		}
		if !rt.edges.connected(edge) && rt.elsewhere != nil && rt.elsewhere(edge) {
			// Another replica holds the edge and retrieves; it resumes
			// from the last verified piece this one kept.
			if rt.retire(edge, wake) {
				return
			}
			continue
		}
		if !rt.edges.connected(edge) {
			rt.waiting(edge, "the edge is offline; the range is fetched when it reconnects")
			if !sleep(rt.set.poll) {
				return
			}
			continue
		}
		err = rt.run(ctx, j)
		var le linkError
		var fe fatalError
		var ee edgeError
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return
		case errors.As(err, &le):
			log.Info("evidence: link to the edge lost; will resume", "request", j.req.ID, "camera", j.item.Camera, "err", err)
			rt.waiting(edge, "the link to the edge dropped ("+le.msg+"); fetching resumes when it is back")
			if !sleep(rt.set.retry) {
				return
			}
		case errors.As(err, &fe):
			log.Warn("evidence: retrieval failed", "request", j.req.ID, "camera", j.item.Camera, "err", err)
			_, _ = rt.update(j.req.ID, j.idx, func(it *RetrievalItem) { it.Status, it.Detail = RetrievalFailed, fe.msg })
		default:
			if errors.As(err, &ee) && ee.status == wire.StatusNotAvailable {
				_, _ = rt.update(j.req.ID, j.idx, func(it *RetrievalItem) { it.Status, it.Detail = RetrievalFailed, ee.msg })
				continue
			}
			log.Warn("evidence: attempt failed; will retry", "request", j.req.ID, "camera", j.item.Camera, "err", err)
			_, _ = rt.update(j.req.ID, j.idx, func(it *RetrievalItem) {
				it.FailedAttempts++
				it.Detail = "retrying after: " + err.Error()
			})
			if !sleep(rt.set.retry) {
				return
			}
		}
	}
}

// retire ends the edge's worker unless it was woken meanwhile (then it
// reports false and the worker goes on).
func (rt *retrieval) retire(edge string, wake chan struct{}) bool {
	rt.wmu.Lock()
	defer rt.wmu.Unlock()
	select {
	case <-wake:
		return false
	default:
	}
	delete(rt.workers, edge)
	return true
}

// waiting marks the edge's unfinished items as waiting for it.
func (rt *retrieval) waiting(edge, why string) {
	for _, j := range rt.pending(edge) {
		if j.item.Status == RetrievalReady || (j.item.Status == RetrievalWaiting && j.item.Detail == why) {
			continue
		}
		_, _ = rt.update(j.req.ID, j.idx, func(it *RetrievalItem) { it.Status, it.Detail = RetrievalWaiting, why })
	}
}

// call sends one request to the edge and collects its whole answer.
func (rt *retrieval) call(ctx context.Context, edge string, req wire.Request, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	parts, forget, err := rt.edges.request(ctx, edge, req)
	switch {
	case errors.Is(err, ErrEdgeOffline):
		return nil, linkError{"the edge is offline"}
	case err != nil:
		return nil, err
	}
	defer forget()
	var data []byte
	for {
		select {
		case p, open := <-parts:
			if !open {
				return nil, linkError{"the edge went away before answering"}
			}
			if p.Status != wire.StatusOK {
				return nil, edgeError{p.Status, p.Error}
			}
			data = append(data, p.Data...)
			if p.Final {
				return data, nil
			}
		case <-ctx.Done():
			return nil, linkError{"the edge did not answer in time"}
		}
	}
}

// itemPath is where an item's video is kept, relative to the data dir:
// <edge>--<camera>.mp4, and <edge>--<camera>+part<n>.mp4 for the nth
// part of a range (n from 2; no edge or camera ID holds a "+").
func itemPath(reqID string, it *RetrievalItem) string {
	name := url.PathEscape(it.Edge) + "--" + url.PathEscape(it.Camera)
	if it.Part > 0 {
		name += fmt.Sprintf("+part%d", it.Part+1)
	}
	return filepath.Join("evidence", reqID, name+".mp4")
}

// run takes one item as far as it goes: describe, fetch, verify, keep,
// release. Each step records its progress in the item, so a restart or a
// lost link resumes where it stopped.
func (rt *retrieval) run(ctx context.Context, j job) error {
	it := j.item
	key := j.req.ID + "-" + fmt.Sprint(j.idx)
	from, to := j.req.itemRange(&it)
	base := wire.Request{Camera: it.Camera, From: from, To: to}
	if it.Status == RetrievalReady {
		return rt.release(ctx, j, key)
	}
	if it.FailedAttempts >= maxTransient {
		return fatalError{"the edge kept failing: " + it.Detail}
	}
	if it.Export == nil {
		var err error
		if it, err = rt.describe(ctx, j, key, base); err != nil {
			return err
		}
	}
	f, err := rt.files.partial(itemPath(j.req.ID, &it))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := rt.fetchChunks(ctx, j, key, base, it, f); err != nil {
		return err
	}
	sum, err := rt.checkFile(j, f, it.Export)
	if err != nil {
		return err
	}
	f.Close()
	if err := rt.keep(ctx, j, key, base, it, sum); err != nil {
		return err
	}
	return rt.release(ctx, j, key)
}

// describe asks the edge to describe the item's export (its chunks and
// their hashes, pinned under key) and stores the description; a range in
// which the camera changed codec or picture size gets another part for
// the rest. It returns the item as stored.
func (rt *retrieval) describe(ctx context.Context, j job, key string, base wire.Request) (RetrievalItem, error) {
	it, from, to := j.item, base.From, base.To
	req := base
	req.Method, req.Evidence = wire.MethodExportInfo, &wire.EvidenceParams{Key: key, ChunkSize: rt.set.chunkSize}
	if _, err := rt.update(j.req.ID, j.idx, func(x *RetrievalItem) {
		x.Status, x.Detail = RetrievalFetching, "the edge is preparing the export"
	}); err != nil {
		return it, err
	}
	b, err := rt.call(ctx, it.Edge, req, exportInfoTimeout)
	if err != nil {
		return it, err
	}
	var m wire.ExportManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return it, fmt.Errorf("export_info answer: %w", err)
	}
	if err := m.Check(); err != nil {
		return it, fatalError{err.Error()}
	}
	if !m.From.Equal(from) || !m.To.Equal(to) {
		return it, fatalError{fmt.Sprintf("the edge described %v..%v, not the range asked for (%v..%v)", m.From, m.To, from, to)}
	}
	off, src := rt.edges.clockOffset(it.Edge)
	if it, err = rt.modify(j.req.ID, j.idx, func(r *EvidenceRequest) {
		x := &r.Items[j.idx]
		x.Export, x.ChunksTotal, x.ChunksVerified, x.Size = &m, len(m.Chunks), 0, m.Size
		x.CentralClockOffsetMS, x.CentralClockOffsetSource = off.Milliseconds(), src
		x.Detail = ""
		if !m.Next.IsZero() {
			r.addPart(j.idx, m.Next, to)
		}
	}); err != nil {
		return it, err
	}
	if !m.Next.IsZero() {
		rt.log.Info("evidence: the camera changed codec or picture size in the range; the rest is another part",
			"request", j.req.ID, "edge_id", it.Edge, "camera", it.Camera, "part", it.Part+1, "next_part", it.Part+2, "next", m.Next, "to", to)
	}
	return it, nil
}

// fetchChunks fetches the chunks past the last verified one into f, each
// checked against its hash and synced before the item counts it; a chunk
// that keeps failing its hash has the export described again.
func (rt *retrieval) fetchChunks(ctx context.Context, j job, key string, base wire.Request, it RetrievalItem, f partialFile) error {
	m := it.Export
	verified := it.ChunksVerified
	// What lies past the last verified chunk is not trusted.
	if err := f.Truncate(min(int64(verified)*m.ChunkSize, m.Size)); err != nil {
		return err
	}
	retries := 0
	for verified < len(m.Chunks) {
		off := int64(verified) * m.ChunkSize
		length := min(m.ChunkSize, m.Size-off)
		req := base
		req.Method, req.Evidence = wire.MethodExportRange, &wire.EvidenceParams{Key: key, Offset: off, Length: length}
		_, _ = rt.update(j.req.ID, j.idx, func(x *RetrievalItem) {
			x.Status, x.Detail = RetrievalFetching, ""
			x.ChunksFetched++
		})
		data, err := rt.call(ctx, it.Edge, req, exportRangeTimeout)
		if err != nil {
			return err
		}
		if h := rt.set.faults; h != nil {
			data = h(j.req.ID, j.idx, verified, data)
		}
		sum := sha256.Sum256(data)
		if int64(len(data)) != length || hex.EncodeToString(sum[:]) != m.Chunks[verified] {
			retries++
			rt.log.Warn("evidence: chunk failed verification; fetching it again", "request", j.req.ID, "camera", it.Camera,
				"chunk", verified, "bytes", len(data), "want_bytes", length)
			_, _ = rt.update(j.req.ID, j.idx, func(x *RetrievalItem) { x.ChunksRejected++ })
			if retries > maxChunkRetries {
				return rt.redescribe(j, fmt.Sprintf("chunk %d failed its hash %d times", verified, retries))
			}
			continue
		}
		retries = 0
		if _, err := f.WriteAt(data, off); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		verified++
		v := verified
		if _, err := rt.update(j.req.ID, j.idx, func(x *RetrievalItem) {
			x.ChunksVerified = v
			x.Percent = int(int64(v) * 100 / int64(len(m.Chunks)))
			x.FailedAttempts = 0
		}); err != nil {
			return err
		}
	}
	return nil
}

// checkFile hashes the whole file, as it lies on disk, and compares it
// with the edge's export; a mismatch has the export described again.
func (rt *retrieval) checkFile(j job, f partialFile, m *wire.ExportManifest) (string, error) {
	r, err := f.Reader()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if n != m.Size || sum != m.SHA256 {
		return "", rt.redescribe(j, fmt.Sprintf("the file (%d bytes, SHA-256 %s) does not match the edge's export (%d bytes, %s)", n, sum, m.Size, m.SHA256))
	}
	return sum, nil
}

// keep fetches the contact sheet, moves the verified video from its
// .part file to its place and marks the item ready.
func (rt *retrieval) keep(ctx context.Context, j job, key string, base wire.Request, it RetrievalItem, sum string) error {
	m := it.Export
	// The contact sheet, while the edge still pins the range: a restart
	// or a lost link comes back here, the video still in its .part file.
	sheet, sheetSum, sheetNote, err := rt.fetchSheet(ctx, j, key, base, m)
	if err != nil {
		return err
	}
	final := itemPath(j.req.ID, &it)
	if err := rt.files.keep(final); err != nil {
		return err
	}
	if _, err := rt.update(j.req.ID, j.idx, func(x *RetrievalItem) {
		x.Status, x.Detail, x.Percent = RetrievalReady, "", 100
		x.File, x.SHA256, x.ReadyAt = final, sum, time.Now().UTC()
		x.ContactSheet, x.ContactSheetSHA256, x.ContactSheetNote = sheet, sheetSum, sheetNote
	}); err != nil {
		return err
	}
	now, _ := rt.itemOf(j.req.ID, j.idx)
	rt.log.Info("evidence: range retrieved and verified", "request", j.req.ID, "edge_id", it.Edge, "camera", it.Camera,
		"part", it.Part+1, "start", m.Start, "end", m.End, "bytes", m.Size, "sha256", sum, "chunks", len(m.Chunks), "chunks_fetched", now.ChunksFetched, "chunks_rejected", now.ChunksRejected)
	return nil
}

// fetchSheet asks the edge for the contact sheet of the item's export
// (wire.MethodContactSheet) while it still pins the range, and keeps it
// beside the video as <item>.jpg; file is relative to the data dir.
//
// Why the edge: a contact sheet means decoding H.264/H.265 (FFmpeg) and
// drawing (OpenCV), both cgo, and the edge has them already; central
// stores the JPEG and central/evidence copies it into the bundle byte for
// byte, so the bundle has the same members as ever, every one hashed in
// the signed manifest, and central builds with CGO_ENABLED=0 and stays
// fully functional. A lost link is retried like any other step. An edge
// that makes none (an older edge, an undecodable picture, too slow)
// leaves the item without a sheet and with a note saying why, which the
// bundle's manifest and README carry; the video is never held up.
func (rt *retrieval) fetchSheet(ctx context.Context, j job, key string, base wire.Request, m *wire.ExportManifest) (file, sum, note string, err error) {
	it := j.item
	c := bundleCamera{EntranceID: it.SiteID, CameraID: it.Camera, CameraName: it.Camera}
	newBundleNames(rt.township, rt.edges.names).nameCamera(&c, it)
	title := evidence.SheetTitle(c.SiteName, c.EntranceName, c.CameraName, evidence.Range{Start: m.Start, End: m.End})
	if len(title) > wire.MaxContactTitle {
		title = strings.ToValidUTF8(title[:wire.MaxContactTitle], "")
	}
	req := base
	req.Method, req.Evidence = wire.MethodContactSheet, &wire.EvidenceParams{Key: key, Title: title}
	b, err := rt.call(ctx, it.Edge, req, contactSheetTimeout)
	var ee edgeError
	var le linkError
	switch {
	case errors.As(err, &ee):
		note = "the edge made no contact sheet (" + ee.Error() + ")"
	case errors.As(err, &le) && ctx.Err() == nil && rt.edges.connected(it.Edge):
		note = "the edge made no contact sheet in " + contactSheetTimeout.String()
	case err != nil:
		return "", "", "", err
	default:
		if _, jerr := jpeg.DecodeConfig(bytes.NewReader(b)); jerr != nil {
			note = "the edge's contact sheet was not a JPEG (" + jerr.Error() + ")"
		}
	}
	if note != "" {
		rt.log.Warn("evidence: no contact sheet", "request", j.req.ID, "edge_id", it.Edge, "camera", it.Camera, "why", note)
		return "", "", note, nil
	}
	file = strings.TrimSuffix(itemPath(j.req.ID, &it), ".mp4") + ".jpg"
	if err := rt.files.put(file, b); err != nil {
		return "", "", "", err
	}
	h := sha256.Sum256(b)
	return file, hex.EncodeToString(h[:]), "", nil
}

// addPart makes sure the request holds the part after item i: the rest of
// its camera's range, from next to to. Describing an item again (after
// failed hashes) finds its next part there already; one not yet
// described takes the new start.
func (r *EvidenceRequest) addPart(i int, next, to time.Time) {
	it := r.Items[i]
	for _, k := range r.parts(i) {
		if p := &r.Items[k]; p.Part == it.Part+1 {
			if p.Export == nil {
				p.From, p.To = next, to
			}
			return
		}
	}
	r.Items = append(r.Items, RetrievalItem{Edge: it.Edge, Camera: it.Camera, SiteID: it.SiteID, Part: it.Part + 1,
		From: next, To: to, Status: RetrievalQueued})
}

// redescribe starts an item over from the edge's description, once; a
// second time the item fails.
func (rt *retrieval) redescribe(j job, why string) error {
	it, err := rt.update(j.req.ID, j.idx, func(x *RetrievalItem) {
		if x.Redescribed >= maxRedescribes {
			return
		}
		x.Redescribed++
		x.Export, x.ChunksVerified, x.ChunksTotal, x.Percent = nil, 0, 0, 0
		x.Detail = why + "; asking the edge to describe the export again"
	})
	if err != nil {
		return err
	}
	if it.Export != nil {
		return fatalError{why}
	}
	return edgeError{wire.StatusError, why}
}

func (b *requestBook) itemOf(id string, idx int) (RetrievalItem, error) {
	r, err := b.get(id)
	if err != nil || idx >= len(r.Items) {
		return RetrievalItem{}, errors.Join(err, ErrNotFound)
	}
	return r.Items[idx], nil
}

// release tells the edge central holds the range: it may drop the
// item's pin and every pin within the camera's range. A part of a range
// waits until all its parts are at central (its pin holds the rest on
// the edge until then); each part then releases its own pin, with the
// range of all of them.
func (rt *retrieval) release(ctx context.Context, j job, key string) error {
	r, err := rt.get(j.req.ID)
	if err != nil {
		return err
	}
	if !r.partsReady(j.idx) {
		return nil // the worker comes back to it once the other parts are here
	}
	req := wire.Request{Method: wire.MethodRelease, Camera: j.item.Camera, Evidence: &wire.EvidenceParams{Key: key}}
	for _, k := range r.parts(j.idx) {
		m := r.Items[k].Export
		if req.From.IsZero() || m.Start.Before(req.From) {
			req.From = m.Start
		}
		req.To = later(req.To, m.End)
	}
	if !req.To.After(req.From) {
		req.From, req.To = j.req.From, j.req.To
	}
	b, err := rt.call(ctx, j.item.Edge, req, releaseTimeout)
	if err != nil {
		return err
	}
	var rel wire.Released
	_ = json.Unmarshal(b, &rel)
	_, err = rt.update(j.req.ID, j.idx, func(x *RetrievalItem) { x.PinsReleased, x.ReleasedPins = true, rel.Pins })
	return err
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// connected reports whether an edge has a live connection.
func (h *edgeHub) connected(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conns[id] != nil
}

// clockOffset is central's clock minus the edge's as measured at its
// last hello, and how.
func (h *edgeHub) clockOffset(id string) (time.Duration, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if st := h.state[id]; st != nil && !st.connectedAt.IsZero() {
		return st.clockOffset, "central: its clock when the edge's hello arrived minus the time in the hello (one-way delay included)"
	}
	return 0, ""
}
