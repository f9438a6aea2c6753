package central

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// Requests to an edge held by another replica. A component that asks an
// edge (a playback window, a timeline's recordings, an evidence piece, a
// config push) calls edgeHub.request as with one central; when the edge
// is connected to another replica the request is relayed there
// (replicaRouter.relay → POST /api/v1/replica/edges/{id}/request on the
// holder, handleRelay) and the edge's answer comes back part by part.
// The person's request was authorised and audited by the replica they
// asked; the relay is signed as the replica itself (roleReplica), which
// no console user holds.

// roleReplica is the role of a replica relaying to another; only a
// signed forwarded identity carries it.
const roleReplica = "replica"

var rolesReplica = []string{roleReplica}

// relayPath is the holder's relay route for edge.
func relayPath(edge string) string {
	return "/api/v1/replica/edges/" + url.PathEscape(edge) + "/request"
}

// maxRelayRequest bounds a relayed request's body (a config push is the
// largest).
const maxRelayRequest = 8 << 20

// relay sends req to the replica holding edge and returns its answer's
// parts, as edgeHub.request does; ErrEdgeOffline if no replica holds it.
func (rr *replicaRouter) relay(ctx context.Context, edge string, req wire.Request) (<-chan wire.Response, func(), error) {
	target, ok, err := rr.presence.holder(ctx, edge)
	switch {
	case err != nil:
		return nil, nil, err
	case !ok || target == rr.url():
		return nil, nil, ErrEdgeOffline
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, nil, err
	}
	path := relayPath(edge)
	id, sig, err := rr.sign(forwardedIdentity{User: "replica:" + rr.id, Role: roleReplica, Method: http.MethodPost, URI: path,
		At: time.Now().UTC(), Replica: rr.id})
	if err != nil {
		return nil, nil, err
	}
	// As with an edge connected here, ctx bounds asking; the answer's
	// stream lasts until forget (or central closes): a caller may cancel
	// ctx once the first part is in (proxyEdge does).
	sctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(rr.ctx, cancel)
	asking := context.AfterFunc(ctx, cancel)
	hr, err := http.NewRequestWithContext(sctx, http.MethodPost, target+path, bytes.NewReader(body))
	if err != nil {
		asking()
		stop()
		cancel()
		return nil, nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set(hdrReplicaIdentity, id)
	hr.Header.Set(hdrReplicaSignature, sig)
	resp, err := http.DefaultClient.Do(hr)
	if err == nil && !asking() {
		err = ctx.Err() // ctx ended as the answer began
		resp.Body.Close()
	}
	if err != nil {
		asking()
		stop()
		cancel()
		return nil, nil, fmt.Errorf("%w (its replica %s does not answer: %v)", ErrEdgeOffline, target, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		stop()
		cancel()
		if resp.StatusCode == http.StatusServiceUnavailable {
			return nil, nil, ErrEdgeOffline
		}
		return nil, nil, fmt.Errorf("relay to %s: %s: %s", target, resp.Status, bytes.TrimSpace(b))
	}
	ch := make(chan wire.Response, 16)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 2*wire.MaxEvidenceChunk+(1<<20))
		for sc.Scan() {
			var p wire.Response
			if json.Unmarshal(sc.Bytes(), &p) != nil {
				return
			}
			select {
			case ch <- p:
			case <-sctx.Done():
				return
			}
			if p.Final {
				return
			}
		}
	}()
	return ch, func() { stop(); cancel() }, nil
}

// handleRelay serves POST /api/v1/replica/edges/{id}/request: the edge's
// answer to the relayed request, one JSON wire.Response per line; 503 if
// the edge is not connected here (it moved: the asking replica looks
// again).
func (rr *replicaRouter) handleRelay(hub *edgeHub) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if rr == nil {
			writeError(w, http.StatusNotFound, "", "this central has no replicas")
			return
		}
		var req wire.Request
		if err := json.NewDecoder(io.LimitReader(r.Body, maxRelayRequest)).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "", "relayed request: "+err.Error())
			return
		}
		parts, forget, err := hub.requestLocal(r.Context(), r.PathValue("id"), req)
		if err != nil {
			status := http.StatusBadGateway
			if errors.Is(err, ErrEdgeOffline) {
				status = http.StatusServiceUnavailable
			}
			writeError(w, status, "", err.Error())
			return
		}
		defer forget()
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		flush := http.NewResponseController(w)
		enc := json.NewEncoder(w)
		for {
			select {
			case p, open := <-parts:
				if !open {
					return // the edge went away: the asker sees the stream end
				}
				if enc.Encode(p) != nil {
					return
				}
				_ = flush.Flush()
				if p.Final {
					return
				}
			case <-r.Context().Done():
				return
			}
		}
	}
}
