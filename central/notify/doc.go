// Package notify sends central's alerts out, so they are not only shown on
// the console: every alert and every change of its state is published to
// an MQTT broker and posted to webhooks (a signed generic JSON webhook, or
// a WeCom or DingTalk group robot), with retries and without losing
// anything while a receiver is down, up to a bounded, counted queue.
//
// The package knows nothing of central's types: the composition root maps
// its alert records to an Event and calls Notifier.Publish after each
// change is stored (a new alert, an update, a workflow step, an
// escalation of a red alert nobody acknowledged in time).
//
// # Delivery
//
// Each sink (the broker, each webhook) has its own bounded queue and
// goroutine. Publish never blocks: it appends to every queue; a full
// queue drops its oldest non-red event (else its oldest), and counts it.
// A sink delivers its queue in order, one event at a time, and removes an
// event only once the receiver acknowledged it (MQTT PUBACK at QoS 1; a
// webhook's 2xx, and for the robots errcode 0). A failed attempt is
// retried after a capped, jittered exponential backoff (1s doubling to
// 60s); a webhook's 4xx other than 408 and 429 is a refusal for good: the
// event is logged, counted and dropped. Delivery is therefore at least
// once: a receiver drops an event whose seq it has already seen.
//
// # MQTT
//
// With prefix "vigil" (topic_prefix):
//
//	vigil/alerts                           every event, JSON, not retained
//	vigil/alerts/<site>/<alert_id>/state   the alert's latest event, retained; an
//	                                       empty retained message once it is resolved or closed
//	vigil/available                        "online" (retained) / "offline" (will and on close)
//
// "/", "+", "#" and NUL in a site or alert id become "_" in a topic.
//
// # Payload
//
// Every message (MQTT, generic webhook) is an Event as JSON, version 1:
//
//	{"version":1,"type":"state","seq":1042,"alert_id":"01JF…","site":"north-village",
//	 "edge":"edge-1","source":"gate-3","kind":"forced","severity":"red","priority":1,
//	 "state":"acknowledged","prev_state":"new","count":1,
//	 "time":"2026-12-07T05:00:00Z","state_time":"2026-12-07T05:01:00Z","by":"alice",
//	 "summary":"gate-3 forced open","summary_zh":"3号门被强行打开",
//	 "snapshot_url":"https://central.example/#/alerts/01JF…"}
//
// # Generic webhook signature
//
// A POST of the payload with X-Vigil-Event (the type), X-Vigil-Timestamp
// (Unix seconds) and X-Vigil-Signature: "sha256=" + hex(HMAC-SHA256(secret,
// timestamp + "." + body)). Receivers check it with Verify.
//
// README.md in this directory documents the topics, payloads, presets and
// metrics for people integrating with Vigil.
package notify
