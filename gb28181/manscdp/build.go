package manscdp

import (
	"encoding/xml"
	"fmt"
	"time"
)

// Header is what every document a device sends carries: the command's SN
// (the query's, for a response), the device or channel ID it is about, and
// the charset to write it in.
type Header struct {
	SN       uint32
	DeviceID string
	Charset  Charset
}

// Status values of a Catalog item.
const (
	StatusOn  = "ON"
	StatusOff = "OFF"
)

// CatalogItem is one channel (camera, alarm input) in a Catalog response
// (A.2.6.4, "itemType"). Longitude and Latitude are written only when set.
type CatalogItem struct {
	XMLName      xml.Name `xml:"Item"`
	DeviceID     string   `xml:"DeviceID"`
	Name         string   `xml:"Name"`
	Manufacturer string   `xml:"Manufacturer"`
	Model        string   `xml:"Model"`
	Owner        string   `xml:"Owner"`
	CivilCode    string   `xml:"CivilCode"`
	Block        string   `xml:"Block,omitempty"`
	Address      string   `xml:"Address"`
	// Parental is 1 when the item has children (an NVR), 0 for a camera.
	Parental int    `xml:"Parental"`
	ParentID string `xml:"ParentID"`
	// SafetyWay 0: no signalling security; RegisterWay 1: RFC 3261 digest.
	SafetyWay   int `xml:"SafetyWay"`
	RegisterWay int `xml:"RegisterWay"`
	// Secrecy 0: not classified.
	Secrecy   int      `xml:"Secrecy"`
	Status    string   `xml:"Status"`
	Longitude *float64 `xml:"Longitude,omitempty"`
	Latitude  *float64 `xml:"Latitude,omitempty"`
}

// Validate checks what a platform rejects an item for.
func (it CatalogItem) Validate() error {
	if err := ValidateID(it.DeviceID); err != nil {
		return fmt.Errorf("catalog item: %w", err)
	}
	if it.Name == "" {
		return fmt.Errorf("catalog item %s: empty Name", it.DeviceID)
	}
	if it.Status != StatusOn && it.Status != StatusOff {
		return fmt.Errorf("catalog item %s: Status %q, want ON or OFF", it.DeviceID, it.Status)
	}
	return nil
}

type itemList[T any] struct {
	Num   int `xml:"Num,attr"`
	Items []T
}

type catalogResponse struct {
	XMLName    xml.Name              `xml:"Response"`
	CmdType    string                `xml:"CmdType"`
	SN         uint32                `xml:"SN"`
	DeviceID   string                `xml:"DeviceID"`
	SumNum     int                   `xml:"SumNum"`
	DeviceList itemList[CatalogItem] `xml:"DeviceList"`
}

// Split bounds how a list answer (Catalog, RecordInfo) is cut into
// messages: at most MaxItems items in one body, and no more items than fit
// MaxBytes (a UDP SIP message should stay under the path MTU; sipgo refuses
// one over 1300 bytes). The first item always goes in, whatever its size.
type Split struct {
	MaxItems int
	MaxBytes int
}

// UDPSplit fits one SIP message over UDP: a body of at most 800 bytes
// leaves room for the SIP headers under sipgo's 1300-byte limit.
var UDPSplit = Split{MaxItems: 8, MaxBytes: 800}

// TCPSplit is for TCP, where size does not matter: platforms still expect
// the list in pieces, as devices send it.
var TCPSplit = Split{MaxItems: 20, MaxBytes: 60000}

// CatalogResponses builds the Response Catalog bodies for items: every one
// carries SumNum (the total) and its DeviceList Num. An empty list is one
// body with SumNum 0.
func CatalogResponses(h Header, items []CatalogItem, s Split) ([][]byte, error) {
	for _, it := range items {
		if err := it.Validate(); err != nil {
			return nil, err
		}
	}
	return splitList(items, s, func(part []CatalogItem) ([]byte, error) {
		return marshal(catalogResponse{
			CmdType: CmdCatalog, SN: h.SN, DeviceID: h.DeviceID, SumNum: len(items),
			DeviceList: itemList[CatalogItem]{Num: len(part), Items: part},
		}, h.Charset)
	})
}

// splitList packs items greedily into bodies that respect s.
func splitList[T any](items []T, s Split, build func([]T) ([]byte, error)) ([][]byte, error) {
	if s.MaxItems <= 0 {
		s.MaxItems = 1
	}
	if len(items) == 0 {
		b, err := build(nil)
		if err != nil {
			return nil, err
		}
		return [][]byte{b}, nil
	}
	var out [][]byte
	for start := 0; start < len(items); {
		end := start + 1
		body, err := build(items[start:end])
		if err != nil {
			return nil, err
		}
		for end < len(items) && end-start < s.MaxItems {
			next, err := build(items[start : end+1])
			if err != nil {
				return nil, err
			}
			if s.MaxBytes > 0 && len(next) > s.MaxBytes {
				break
			}
			body, end = next, end+1
		}
		out = append(out, body)
		start = end
	}
	return out, nil
}

// DeviceInfo is the device's own description (A.2.6.5).
type DeviceInfo struct {
	DeviceName   string
	Manufacturer string
	Model        string
	Firmware     string
	// Channel is the number of channels (cameras and alarm inputs).
	Channel int
}

type deviceInfoResponse struct {
	XMLName      xml.Name `xml:"Response"`
	CmdType      string   `xml:"CmdType"`
	SN           uint32   `xml:"SN"`
	DeviceID     string   `xml:"DeviceID"`
	DeviceName   string   `xml:"DeviceName"`
	Result       string   `xml:"Result"`
	Manufacturer string   `xml:"Manufacturer"`
	Model        string   `xml:"Model"`
	Firmware     string   `xml:"Firmware"`
	Channel      int      `xml:"Channel"`
}

// DeviceInfoResponse builds the Response DeviceInfo body.
func DeviceInfoResponse(h Header, info DeviceInfo) ([]byte, error) {
	return marshal(deviceInfoResponse{
		CmdType: CmdDeviceInfo, SN: h.SN, DeviceID: h.DeviceID, DeviceName: info.DeviceName, Result: "OK",
		Manufacturer: info.Manufacturer, Model: info.Model, Firmware: info.Firmware, Channel: info.Channel,
	}, h.Charset)
}

// Duty states of an alarm input in DeviceStatus (A.2.6.7).
const (
	DutyOnDuty  = "ONDUTY"  // armed
	DutyOffDuty = "OFFDUTY" // disarmed
	DutyAlarm   = "ALARM"   // alarming
)

// AlarmStatus is one alarm input's state in a DeviceStatus response.
type AlarmStatus struct {
	XMLName    xml.Name `xml:"Item"`
	DeviceID   string   `xml:"DeviceID"`
	DutyStatus string   `xml:"DutyStatus"`
}

// DeviceStatus is the device's running state (A.2.6.7).
type DeviceStatus struct {
	Online bool
	// OK is false when the device works with a fault; Reason says which.
	OK        bool
	Reason    string
	Encoding  bool
	Recording bool
	Time      time.Time
	Loc       *time.Location
	Alarms    []AlarmStatus
}

type deviceStatusResponse struct {
	XMLName     xml.Name              `xml:"Response"`
	CmdType     string                `xml:"CmdType"`
	SN          uint32                `xml:"SN"`
	DeviceID    string                `xml:"DeviceID"`
	Result      string                `xml:"Result"`
	Online      string                `xml:"Online"`
	Status      string                `xml:"Status"`
	Reason      string                `xml:"Reason,omitempty"`
	Encode      string                `xml:"Encode"`
	Record      string                `xml:"Record"`
	DeviceTime  string                `xml:"DeviceTime"`
	Alarmstatus itemList[AlarmStatus] `xml:"Alarmstatus"`
}

// DeviceStatusResponse builds the Response DeviceStatus body.
func DeviceStatusResponse(h Header, st DeviceStatus) ([]byte, error) {
	loc := st.Loc
	if loc == nil {
		loc = time.UTC
	}
	r := deviceStatusResponse{
		CmdType: CmdDeviceStatus, SN: h.SN, DeviceID: h.DeviceID, Result: "OK",
		Online: pick(st.Online, "ONLINE", "OFFLINE"), Status: pick(st.OK, "OK", "ERROR"), Reason: st.Reason,
		Encode: pick(st.Encoding, "ON", "OFF"), Record: pick(st.Recording, "ON", "OFF"),
		DeviceTime:  FormatTime(st.Time, loc),
		Alarmstatus: itemList[AlarmStatus]{Num: len(st.Alarms), Items: st.Alarms},
	}
	return marshal(r, h.Charset)
}

func pick(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

type keepalive struct {
	XMLName  xml.Name `xml:"Notify"`
	CmdType  string   `xml:"CmdType"`
	SN       uint32   `xml:"SN"`
	DeviceID string   `xml:"DeviceID"`
	Status   string   `xml:"Status"`
}

// Keepalive builds the Notify Keepalive body (A.2.5.2); ok false reports
// the device in fault (Status ERROR).
func Keepalive(h Header, ok bool) ([]byte, error) {
	return marshal(keepalive{CmdType: CmdKeepalive, SN: h.SN, DeviceID: h.DeviceID, Status: pick(ok, "OK", "ERROR")}, h.Charset)
}

// RecordItem is one recording in a RecordInfo response (A.2.6.6).
type RecordItem struct {
	XMLName   xml.Name `xml:"Item"`
	DeviceID  string   `xml:"DeviceID"`
	Name      string   `xml:"Name"`
	FilePath  string   `xml:"FilePath,omitempty"`
	Address   string   `xml:"Address,omitempty"`
	StartTime string   `xml:"StartTime"`
	EndTime   string   `xml:"EndTime"`
	Secrecy   int      `xml:"Secrecy"`
	// Type is time, alarm or manual.
	Type       string `xml:"Type"`
	RecorderID string `xml:"RecorderID,omitempty"`
	FileSize   int64  `xml:"FileSize,omitempty"`
}

// Record types of a RecordInfo item or query.
const (
	RecordTime   = "time"
	RecordAlarm  = "alarm"
	RecordManual = "manual"
	RecordAll    = "all"
)

// NewRecordItem fills a RecordItem with times written in loc.
func NewRecordItem(channelID, name string, start, end time.Time, typ string, loc *time.Location) RecordItem {
	return RecordItem{DeviceID: channelID, Name: name, StartTime: FormatTime(start, loc), EndTime: FormatTime(end, loc), Type: typ}
}

type recordInfoResponse struct {
	XMLName    xml.Name             `xml:"Response"`
	CmdType    string               `xml:"CmdType"`
	SN         uint32               `xml:"SN"`
	DeviceID   string               `xml:"DeviceID"`
	Name       string               `xml:"Name"`
	SumNum     int                  `xml:"SumNum"`
	RecordList itemList[RecordItem] `xml:"RecordList"`
}

// RecordInfoResponses builds the Response RecordInfo bodies for the
// recordings of one channel (h.DeviceID), split like a catalog.
func RecordInfoResponses(h Header, name string, items []RecordItem, s Split) ([][]byte, error) {
	return splitList(items, s, func(part []RecordItem) ([]byte, error) {
		return marshal(recordInfoResponse{
			CmdType: CmdRecordInfo, SN: h.SN, DeviceID: h.DeviceID, Name: name, SumNum: len(items),
			RecordList: itemList[RecordItem]{Num: len(part), Items: part},
		}, h.Charset)
	})
}

// marshal writes v as an indented document in cs.
func marshal(v any, cs Charset) ([]byte, error) {
	doc, err := xml.MarshalIndent(v, "", " ")
	if err != nil {
		return nil, fmt.Errorf("manscdp: %w", err)
	}
	return encodeBody(doc, cs)
}
