// Package manscdp reads and writes the MANSCDP XML bodies of GB/T 28181
// (2016, Annex A; the 2022 edition keeps them) that a device exchanges with
// a video platform in SIP MESSAGE and NOTIFY requests: the platform's Query
// and Control commands, and the device's Notify (Keepalive, Alarm) and
// Response (Catalog, DeviceInfo, DeviceStatus, RecordInfo) bodies.
//
// Platforms write GB2312 (declared in the XML prolog) or UTF-8; Parse
// decodes either and remembers which, and the builders answer in the
// charset the query used. Everything here is pure: no sockets, no clocks
// other than the times passed in.
package manscdp
