package device

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// dialog is the device's half of an RFC 3261 dialog (section 12) that the
// platform opened with an INVITE or a SUBSCRIBE: the device is the UAS, so
// its local tag is the To tag it put in its 2xx, the remote tag the From
// tag of the request. It keeps what in-dialog requests need in both
// directions: the remote target (the request's Contact), the route set
// (Record-Route), and both CSeq counters.
type dialog struct {
	callID    string
	localTag  string
	remoteTag string
	local     sip.Uri // the request's To URI
	remote    sip.Uri // the request's From URI
	target    sip.Uri // the request's Contact
	routes    []sip.Uri
	source    string // where the request came from, when it had no Contact

	mu         sync.Mutex
	localCSeq  uint32
	remoteCSeq uint32
}

// newDialog builds the UAS dialog state for an INVITE or SUBSCRIBE that
// the device answers 2xx, with a fresh local tag.
func newDialog(req *sip.Request) (*dialog, error) {
	from, to, cid := req.From(), req.To(), req.CallID()
	if from == nil || to == nil || cid == nil || req.CSeq() == nil {
		return nil, fmt.Errorf("%s without From, To, Call-ID or CSeq", req.Method)
	}
	remoteTag, _ := from.Params.Get("tag")
	if remoteTag == "" {
		return nil, fmt.Errorf("%s without a From tag", req.Method)
	}
	dl := &dialog{
		callID: cid.Value(), localTag: sip.GenerateTagN(16), remoteTag: remoteTag,
		local: *to.Address.Clone(), remote: *from.Address.Clone(),
		remoteCSeq: req.CSeq().SeqNo,
		// The device's own requests in the dialog start from an
		// arbitrary number (RFC 3261 8.1.1.5).
		localCSeq: uint32(time.Now().UnixNano()%10000) + 1,
		source:    req.Source(),
	}
	if c := req.Contact(); c != nil {
		dl.target = *c.Address.Clone()
	} else {
		dl.target = *from.Address.Clone()
	}
	// The route set, in the Record-Route order (RFC 3261 12.1.1); sipgo
	// parses each entry into a header of its own.
	for _, h := range req.GetHeaders("Record-Route") {
		if rr, ok := h.(*sip.RecordRouteHeader); ok {
			dl.routes = append(dl.routes, *rr.Address.Clone())
		}
	}
	return dl, nil
}

// key identifies the dialog among the device's: Call-ID and both tags.
func (dl *dialog) key() string { return dialogKey(dl.callID, dl.localTag, dl.remoteTag) }

func dialogKey(callID, localTag, remoteTag string) string {
	return callID + "\x00" + localTag + "\x00" + remoteTag
}

// requestKey is the dialog key of an in-dialog request from the platform
// (its To tag is ours); ok is false for a request outside any dialog.
func requestKey(req *sip.Request) (key string, ok bool) {
	from, to, cid := req.From(), req.To(), req.CallID()
	if from == nil || to == nil || cid == nil {
		return "", false
	}
	lt, _ := to.Params.Get("tag")
	rt, _ := from.Params.Get("tag")
	if lt == "" {
		return "", false
	}
	return dialogKey(cid.Value(), lt, rt), true
}

// answer completes a 2xx to the dialog's first request: our To tag and
// Contact.
func (dl *dialog) answer(res *sip.Response, contact sip.ContactHeader) {
	if to := res.To(); to != nil {
		to.Params.Remove("tag")
		to.Params.Add("tag", dl.localTag)
	}
	res.AppendHeader(&contact)
}

// checkCSeq applies RFC 3261 12.2.2 to an in-dialog request from the
// platform: its CSeq must be above the last one seen (else the device
// answers 500); it then becomes the last one.
func (dl *dialog) checkCSeq(req *sip.Request) bool {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	n := req.CSeq().SeqNo
	if n <= dl.remoteCSeq {
		return false
	}
	dl.remoteCSeq = n
	return true
}

// request builds an in-dialog request from the device (RFC 3261 12.2.1.1):
// Request-URI the remote target, From/To with the dialog's tags, the next
// local CSeq, the route set as Route headers.
func (s *session) dialogRequest(dl *dialog, method sip.RequestMethod) *sip.Request {
	dl.mu.Lock()
	dl.localCSeq++
	cseq := dl.localCSeq
	dl.mu.Unlock()
	req := s.baseRequest(method, dl.target, dl.local, dl.localTag, dl.remote, dl.remoteTag, dl.callID, cseq)
	for _, r := range dl.routes {
		req.AppendHeader(&sip.RouteHeader{Address: *r.Clone()})
	}
	if method != sip.MESSAGE { // RFC 3428: a MESSAGE carries no Contact
		contact := s.contact
		req.AppendHeader(&contact)
	}
	dest := dl.target
	if len(dl.routes) > 0 {
		dest = dl.routes[0]
	}
	if dest.Host != "" {
		port := dest.Port
		if port == 0 {
			port = 5060
		}
		req.SetDestination(net.JoinHostPort(dest.Host, strconv.Itoa(port)))
	} else {
		req.SetDestination(dl.source)
	}
	return req
}

// doInDialog sends an in-dialog request and waits for its final answer,
// bounded like the device's other requests.
func (s *session) doInDialog(ctx context.Context, dl *dialog, method sip.RequestMethod, build func(*sip.Request)) (*sip.Response, error) {
	req := s.dialogRequest(dl, method)
	if build != nil {
		build(req)
	}
	if req.ContentLength() == nil {
		req.SetBody(nil)
	}
	rctx, cancel := context.WithTimeout(ctx, s.requestTimeout())
	defer cancel()
	return s.client.Do(rctx, req)
}
