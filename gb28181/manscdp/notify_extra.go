package manscdp

import (
	"encoding/xml"
	"fmt"
)

// Catalog change events of a Notify Catalog item (A.2.5.6 of GB/T
// 28181-2016: ON online, OFF offline, VLOST video lost, DEFECT fault, ADD,
// DEL, UPDATE).
const (
	EventOn     = "ON"
	EventOff    = "OFF"
	EventVLost  = "VLOST"
	EventDefect = "DEFECT"
	EventAdd    = "ADD"
	EventDel    = "DEL"
	EventUpdate = "UPDATE"
)

// CatalogEvent is one changed channel of a catalog subscription's NOTIFY:
// the item as a Catalog response writes it and what happened to it. A DEL
// needs only the item's DeviceID.
type CatalogEvent struct {
	Item  CatalogItem
	Event string
}

type catalogEventItem struct {
	XMLName xml.Name `xml:"Item"`
	CatalogItem
	Event string `xml:"Event"`
}

type delItem struct {
	XMLName  xml.Name `xml:"Item"`
	DeviceID string   `xml:"DeviceID"`
	Event    string   `xml:"Event"`
}

type catalogNotify struct {
	XMLName    xml.Name      `xml:"Notify"`
	CmdType    string        `xml:"CmdType"`
	SN         uint32        `xml:"SN"`
	DeviceID   string        `xml:"DeviceID"`
	SumNum     int           `xml:"SumNum"`
	DeviceList itemList[any] `xml:"DeviceList"`
}

// CatalogNotify builds the Notify Catalog bodies a device sends to its
// catalog subscribers when channels change (GB/T 28181-2016 9.11.2), split
// like a Catalog response; h.DeviceID is the device.
func CatalogNotify(h Header, events []CatalogEvent, s Split) ([][]byte, error) {
	items := make([]any, 0, len(events))
	for _, e := range events {
		switch e.Event {
		case EventDel:
			if err := ValidateID(e.Item.DeviceID); err != nil {
				return nil, fmt.Errorf("catalog event: %w", err)
			}
			items = append(items, delItem{DeviceID: e.Item.DeviceID, Event: e.Event})
		case EventOn, EventOff, EventVLost, EventDefect, EventAdd, EventUpdate:
			if err := e.Item.Validate(); err != nil {
				return nil, err
			}
			items = append(items, catalogEventItem{CatalogItem: e.Item, Event: e.Event})
		default:
			return nil, fmt.Errorf("catalog event %q for %s, want ON, OFF, VLOST, DEFECT, ADD, DEL or UPDATE", e.Event, e.Item.DeviceID)
		}
	}
	return splitList(items, s, func(part []any) ([]byte, error) {
		return marshal(catalogNotify{
			CmdType: CmdCatalog, SN: h.SN, DeviceID: h.DeviceID, SumNum: len(items),
			DeviceList: itemList[any]{Num: len(part), Items: part},
		}, h.Charset)
	})
}

// NotifyTypeMediaEnd is MediaStatus's NotifyType when a playback or
// download has reached the end of the recording (A.2.5.4).
const NotifyTypeMediaEnd = "121"

type mediaStatusNotify struct {
	XMLName    xml.Name `xml:"Notify"`
	CmdType    string   `xml:"CmdType"`
	SN         uint32   `xml:"SN"`
	DeviceID   string   `xml:"DeviceID"`
	NotifyType string   `xml:"NotifyType"`
}

// MediaStatusNotify builds the Notify MediaStatus body a device sends in a
// playback or download session when the recording has been sent to its
// end (NotifyType 121); h.DeviceID is the channel.
func MediaStatusNotify(h Header) ([]byte, error) {
	if err := ValidateID(h.DeviceID); err != nil {
		return nil, fmt.Errorf("manscdp: media status: %w", err)
	}
	return marshal(mediaStatusNotify{CmdType: CmdMediaStatus, SN: h.SN, DeviceID: h.DeviceID, NotifyType: NotifyTypeMediaEnd}, h.Charset)
}

type resultResponse struct {
	XMLName  xml.Name `xml:"Response"`
	CmdType  string   `xml:"CmdType"`
	SN       uint32   `xml:"SN"`
	DeviceID string   `xml:"DeviceID"`
	Result   string   `xml:"Result"`
}

// ResultResponse builds a Response carrying only a Result (OK or ERROR):
// the body of a 200 to a SUBSCRIBE (subscription answer) and the device's
// answer to a DeviceControl (A.2.6.2).
func ResultResponse(h Header, cmdType string, ok bool) ([]byte, error) {
	return marshal(resultResponse{CmdType: cmdType, SN: h.SN, DeviceID: h.DeviceID, Result: pick(ok, "OK", "ERROR")}, h.Charset)
}
