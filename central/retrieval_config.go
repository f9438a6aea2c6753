package central

import (
	"time"

	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/wire"
)

// RetrievalConfig tunes evidence retrieval (retrieval: in central.yaml).
// Every field may be left out; its default then applies.
type RetrievalConfig struct {
	// ChunkSize is the piece, in bytes, that central fetches from an edge
	// and verifies at once, and the unit a dropped link or a restart
	// resumes from: smaller pieces lose less on a poor uplink, larger
	// ones need fewer round trips. Default 4194304 (4 MiB); between 4096
	// and 16777216 (the wire's largest answer).
	ChunkSize int64 `yaml:"chunk_size,omitempty"`
	// Poll is how often a retrieval waiting for an offline edge looks for
	// it again (default 1s; between 10ms and 5m). An edge that reconnects
	// wakes its retrievals at once; this is the fallback.
	Poll config.Duration `yaml:"poll,omitempty"`
	// Retry is the pause after a failed attempt or a dropped link before
	// the next (default 1s; between 10ms and 5m).
	Retry config.Duration `yaml:"retry,omitempty"`
}

// Retrieval defaults and bounds.
const (
	defaultRetrievalChunkSize int64 = 4 << 20
	defaultRetrievalPoll            = time.Second
	defaultRetrievalRetry           = time.Second
	minRetrievalChunkSize     int64 = 4 << 10
	minRetrievalPause               = 10 * time.Millisecond
	maxRetrievalPause               = 5 * time.Minute
)

// RetrievalFaults is a test hook: it sees every chunk central fetches for
// evidence (request ID, item index, chunk index, the bytes as received)
// before the chunk is verified, and returns the bytes to verify in their
// place, as a faulty link would deliver them. Production never sets it.
type RetrievalFaults func(reqID string, item, chunk int, data []byte) []byte

// retrievalSettings are the retrieval workers' settings in force.
type retrievalSettings struct {
	chunkSize   int64
	poll, retry time.Duration
	faults      RetrievalFaults // nil but in tests
}

// settings fills in the defaults of the fields left out.
func (c RetrievalConfig) settings(faults RetrievalFaults) retrievalSettings {
	s := retrievalSettings{chunkSize: c.ChunkSize, poll: c.Poll.D(), retry: c.Retry.D(), faults: faults}
	if s.chunkSize == 0 {
		s.chunkSize = defaultRetrievalChunkSize
	}
	if s.poll == 0 {
		s.poll = defaultRetrievalPoll
	}
	if s.retry == 0 {
		s.retry = defaultRetrievalRetry
	}
	return s
}

// validate reports the fields out of bounds, named as in central.yaml.
func (c RetrievalConfig) validate(add func(field, format string, args ...any)) {
	if n := c.ChunkSize; n != 0 && (n < minRetrievalChunkSize || n > wire.MaxEvidenceChunk) {
		add("retrieval.chunk_size", "must be between %d and %d bytes (default %d)", minRetrievalChunkSize, wire.MaxEvidenceChunk, defaultRetrievalChunkSize)
	}
	for _, f := range []struct {
		name string
		d    time.Duration
		def  time.Duration
	}{{"poll", c.Poll.D(), defaultRetrievalPoll}, {"retry", c.Retry.D(), defaultRetrievalRetry}} {
		if f.d != 0 && (f.d < minRetrievalPause || f.d > maxRetrievalPause) {
			add("retrieval."+f.name, "must be between %v and %v (default %v)", minRetrievalPause, maxRetrievalPause, f.def)
		}
	}
}
