package central

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/vigil-perimeter/vigil/internal/fanout"
)

const (
	// writerQueue bounds ops waiting for the writer. When it is full, edge
	// readers stop reading, TCP pushes back, and edges keep their alerts in
	// their durable outboxes: a slow disk at central never loses anything.
	writerQueue = 4096
	// maxBatch is how many ops share one Badger commit (one fsync).
	maxBatch = 512
	// consoleQueue bounds the frames waiting for one console, about two
	// seconds at 1,000 alerts/s. A console that falls this far behind is
	// cut off and resumes from its cursor, which costs it nothing and never
	// slows anyone else down.
	consoleQueue = 2048
)

// writer is the one goroutine that changes the store: it takes ops from
// edges and the API, commits them in batches (group commit: one fsync for
// many alerts), then, in sequence order, updates site colours, fans the
// changes out to consoles and acknowledges the ops. It owns the site
// colours and is the only publisher of the console feed, and consoles
// subscribe in its goroutine, so a console's snapshot and its live feed
// meet at an exact sequence number.
type writer struct {
	store   AlertStore
	log     *slog.Logger
	met     *metrics
	colours *siteColours
	tamper  *tamperSet // cameras with open tamper alerts, for the live wall (tamper.go)
	queue   int        // per-console capacity; consoleQueue except in tests

	ops chan *op
	ctl chan func()
	// feed fans changes out to consoles under fanout.CloseSlow: a console
	// whose queue is full is cut off (its Sub ends with fanout.ErrSlow) and
	// resumes from its cursor, so what a console gets has no gap.
	// Published only from the writer goroutine, in sequence order.
	feed *fanout.Hub[consoleFrame]
	quit chan struct{}
	done chan struct{}
	// published is the newest change sent to the consoles: every change
	// up to it was, once, in order. ranks are the open alerts' colour
	// ranks by creation seq, so a change read back from the store (another
	// central's) moves the colours as exactly as one made here.
	published uint64
	ranks     map[uint64]int
	// shared is the store when other centrals write it too (nil
	// otherwise); announced is the newest seq they announced, and
	// nudge wakes the writer to catch up to it.
	shared    sharedAlertStore
	announced atomic.Uint64
	nudge     chan struct{}
	cancel    context.CancelFunc
	// observers get every batch's changes in the writer goroutine, after
	// the consoles (notify, edges, escalation: outlets.go); set before
	// start, they must never block.
	observers []func([]Change)
}

// consoleSub is one console's live feed: encoded console messages, in
// sequence order, until it ends (cut off: Err is fanout.ErrSlow).
type consoleSub = fanout.Sub[consoleFrame]

// consoleFrame is one encoded console message; seq is the change it
// carries (0 for messages that are not changes).
type consoleFrame struct {
	seq  uint64
	data []byte
}

// consoleView is what a console starts from: everything up to seq is in
// txn (a Badger read at exactly that point), everything after comes live.
type consoleView struct {
	seq       uint64
	sites     []SiteColour
	openTotal int
	snap      alertView // the store at seq; the console Discards it
}

func newWriter(store AlertStore, tree *siteTree, log *slog.Logger, met *metrics) (*writer, error) {
	w := &writer{store: store, log: log, met: met, colours: newSiteColours(tree), tamper: newTamperSet(), queue: consoleQueue,
		ops: make(chan *op, writerQueue), ctl: make(chan func(), 64),
		feed: fanout.New[consoleFrame](fanout.CloseSlow, fanout.WithDropHook(met.consoleDropped.Inc)),
		quit: make(chan struct{}), done: make(chan struct{}), ranks: map[uint64]int{}, nudge: make(chan struct{}, 1)}
	w.shared, _ = store.(sharedAlertStore)
	w.published = store.LastSeq()
	scratch := map[string]bool{}
	if err := store.openIndex(func(seq uint64, site string, rank int) {
		w.ranks[seq] = rank
		w.colours.move(site, 0, rank, scratch)
	}); err != nil {
		return nil, err
	}
	if err := w.tamper.load(store); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *writer) start() {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	if w.shared != nil {
		watching := make(chan struct{})
		go func() {
			defer close(watching)
			w.shared.watch(ctx, w.storedUpTo)
		}()
		go func() { <-w.done; cancel(); <-watching }()
	}
	go w.run()
}

// storedUpTo notes that the store holds changes up to last (any
// central's) and wakes the writer; it never blocks.
func (w *writer) storedUpTo(last uint64) {
	for {
		cur := w.announced.Load()
		if last <= cur || w.announced.CompareAndSwap(cur, last) {
			break
		}
	}
	select {
	case w.nudge <- struct{}{}:
	default:
	}
}

// stop ends the writer after the batch in progress. Ops still queued are
// not applied and not acknowledged; their edges re-send them.
func (w *writer) stop() {
	close(w.quit)
	<-w.done
	if w.cancel != nil {
		w.cancel()
	}
}

// submit queues o; false if the writer has stopped or cancel fired first.
func (w *writer) submit(o *op, cancel <-chan struct{}) bool {
	select {
	case w.ops <- o:
		return true
	case <-w.quit:
		return false
	case <-cancel:
		return false
	}
}

// do runs f in the writer goroutine between batches and waits for it.
func (w *writer) do(f func()) bool {
	ran := make(chan struct{})
	select {
	case w.ctl <- func() { f(); close(ran) }:
	case <-w.quit:
		return false
	}
	select {
	case <-ran:
		return true
	case <-w.done:
		return false
	}
}

func (w *writer) run() {
	defer close(w.done)
	for {
		select {
		case f := <-w.ctl:
			f()
		case o := <-w.ops:
			w.batch(o)
		case <-w.nudge:
			w.catchUp(w.announced.Load())
		case <-w.quit:
			w.feed.Close() // consoles end too (central is shutting down)
			return
		}
	}
}

// batch commits first and whatever else is already waiting, up to maxBatch.
func (w *writer) batch(first *op) {
	batch := []*op{first}
more:
	for len(batch) < maxBatch {
		select {
		case o := <-w.ops:
			batch = append(batch, o)
		default:
			break more
		}
	}
	started := time.Now()
	changes, err := w.store.apply(batch, started)
	w.met.commitSeconds.Observe(time.Since(started).Seconds())
	w.met.batchSize.Observe(float64(len(batch)))
	if err != nil {
		w.log.Error("storing a batch failed; its edges will re-send", "ops", len(batch), "err", err)
	}
	if len(changes) > 0 {
		// Other centrals' changes numbered before these go out first.
		w.catchUp(changes[0].Seq - 1)
	}
	w.publish(changes)
	if len(changes) > 0 {
		for _, f := range w.observers {
			f(changes)
		}
	}
	for _, o := range batch {
		if o.done == nil {
			continue
		}
		if o.committed {
			o.done(o, nil)
		} else {
			o.done(o, err)
		}
	}
}

// catchUp publishes what other centrals stored up to upto and this one
// has not published yet (nothing when the store is not shared).
func (w *writer) catchUp(upto uint64) {
	for w.shared != nil && upto > w.published {
		changes, err := w.shared.changesIn(w.published, upto, maxBatch)
		if err != nil {
			w.log.Error("reading other centrals' changes failed; retrying at the next", "after", w.published, "err", err)
			return
		}
		if len(changes) == 0 {
			w.log.Error("changes announced but not stored", "after", w.published, "upto", upto)
			return
		}
		w.publish(changes)
	}
}

// publish sends changes, in sequence order and after every change
// published before, and the colour changes they make to every console;
// it moves the colours and the tamper set.
func (w *writer) publish(changes []Change) {
	if len(changes) == 0 {
		return
	}
	sites := map[string]bool{}
	tamperChanged := false
	for i := range changes {
		r := &changes[i].Record
		to := colourRank(r)
		w.colours.move(r.SiteID, w.ranks[r.Seq], to, sites)
		if to == 0 {
			delete(w.ranks, r.Seq)
		} else {
			w.ranks[r.Seq] = to
		}
		tamperChanged = w.tamper.apply(*r) || tamperChanged
	}
	if tamperChanged {
		w.tamper.publish()
	}
	w.published = changes[len(changes)-1].Seq
	if w.feed.Len() == 0 {
		return
	}
	var last uint64
	for i := range changes {
		c := &changes[i]
		last = c.Seq
		w.feed.Publish(consoleFrame{seq: c.Seq, data: c.Frame})
	}
	for id := range sites {
		sc := w.colours.get(id)
		w.feed.Publish(consoleFrame{seq: last, data: encodeConsole(consoleMsg{Type: consoleSite, Seq: last, Site: &sc})})
	}
}

// subscribe registers a console and returns its starting view; the caller
// must Discard view.snap.
func (w *writer) subscribe() (*consoleSub, consoleView, bool) {
	var sub *consoleSub
	var view consoleView
	ok := w.do(func() {
		// In the writer goroutine, between batches: the view and the feed
		// meet at exactly view.seq.
		snap := w.store.readView()
		w.catchUp(snap.last()) // other centrals' changes the view holds
		sub = w.feed.Subscribe(context.Background(), w.queue)
		view = consoleView{seq: snap.last(), sites: w.colours.all(), snap: snap}
		for _, root := range w.colours.tree.roots {
			o := w.colours.get(root).Open
			view.openTotal += o.Red + o.Yellow + o.Green
		}
	})
	return sub, view, ok
}

func (w *writer) unsubscribe(sub *consoleSub) { sub.Close() }

// consoles counts subscribed consoles.
func (w *writer) consoles() int { return w.feed.Len() }

// announce sends a message that is not a stored change (an edge going
// online or offline) to every console, in order with the changes.
func (w *writer) announce(m consoleMsg) {
	frame := consoleFrame{data: encodeConsole(m)}
	select {
	case w.ctl <- func() { w.feed.Publish(frame) }:
	case <-w.quit:
	}
}

// siteView is the hierarchy with colours, for the API.
type siteView struct {
	nodes   map[string]siteNode
	roots   []string
	colours map[string]SiteColour
}

func (w *writer) sites() (siteView, bool) {
	var v siteView
	ok := w.do(func() {
		t := w.colours.tree
		v = siteView{nodes: make(map[string]siteNode, len(t.nodes)), roots: append([]string{}, t.roots...), colours: map[string]SiteColour{}}
		for id, n := range t.nodes {
			c := *n
			c.Children = append([]string{}, n.Children...)
			v.nodes[id] = c
			v.colours[id] = w.colours.get(id)
		}
	})
	return v, ok
}

func encodeConsole(m consoleMsg) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic("central: console message does not marshal: " + err.Error())
	}
	return b
}
