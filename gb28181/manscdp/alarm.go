package manscdp

import (
	"encoding/xml"
	"fmt"
	"time"
)

// AlarmPriority is the alarm level (报警级别, A.2.5.5): 1 is the most urgent.
type AlarmPriority int

// Alarm levels of GB/T 28181 (一级警情 … 四级警情).
const (
	PriorityFirst  AlarmPriority = 1
	PrioritySecond AlarmPriority = 2
	PriorityThird  AlarmPriority = 3
	PriorityFourth AlarmPriority = 4
)

// AlarmMethod is how the alarm was raised (报警方式).
type AlarmMethod int

// Alarm methods of GB/T 28181-2016 A.2.5.5 (kept in 2022).
const (
	MethodTelephone   AlarmMethod = 1 // 电话报警
	MethodDevice      AlarmMethod = 2 // 设备报警 (alarm inputs, tamper, storage)
	MethodSMS         AlarmMethod = 3 // 短信报警
	MethodGPS         AlarmMethod = 4 // GPS报警
	MethodVideo       AlarmMethod = 5 // 视频报警 (video analysis)
	MethodDeviceFault AlarmMethod = 6 // 设备故障报警
	MethodOther       AlarmMethod = 7 // 其他报警
)

// AlarmType codes, meaningful only with their method (报警类型).
const (
	// With MethodDevice.
	DeviceVideoLost   = 1 // 视频丢失
	DeviceTamper      = 2 // 设备防拆
	DeviceStorageFull = 3 // 存储设备磁盘满
	DeviceOverheat    = 4 // 设备高温
	DeviceOvercool    = 5 // 设备低温

	// With MethodVideo.
	VideoManual       = 1  // 人工视频报警
	VideoMotion       = 2  // 运动目标检测
	VideoLeftObject   = 3  // 遗留物检测
	VideoObjectRemove = 4  // 物体移除检测
	VideoTripwire     = 5  // 绊线检测
	VideoIntrusion    = 6  // 入侵检测
	VideoRetrograde   = 7  // 逆行检测
	VideoLoitering    = 8  // 徘徊检测
	VideoFlowCount    = 9  // 流量统计
	VideoDensity      = 10 // 密度检测
	VideoAbnormal     = 11 // 视频异常检测
	VideoFastMoving   = 12 // 快速移动

	// With MethodDeviceFault.
	FaultDisk = 1 // 存储设备磁盘故障
	FaultFan  = 2 // 存储设备风扇故障
)

// Alarm is an alarm the device reports (Notify Alarm, A.2.5.5).
type Alarm struct {
	// DeviceID is the channel (alarm input or camera) that raised it.
	DeviceID    string
	Priority    AlarmPriority
	Method      AlarmMethod
	Type        int // 0: not written
	Time        time.Time
	Description string
	Longitude   *float64
	Latitude    *float64
	// EventType is the AlarmTypeParam for VideoIntrusion and friends:
	// 1 entering the area, 2 leaving it; 0: not written.
	EventType int
}

type alarmTypeParam struct {
	EventType int `xml:"EventType"`
}

type alarmInfo struct {
	AlarmType      int             `xml:"AlarmType"`
	AlarmTypeParam *alarmTypeParam `xml:"AlarmTypeParam,omitempty"`
}

type alarmNotify struct {
	XMLName          xml.Name   `xml:"Notify"`
	CmdType          string     `xml:"CmdType"`
	SN               uint32     `xml:"SN"`
	DeviceID         string     `xml:"DeviceID"`
	AlarmPriority    int        `xml:"AlarmPriority"`
	AlarmMethod      int        `xml:"AlarmMethod"`
	AlarmTime        string     `xml:"AlarmTime"`
	AlarmDescription string     `xml:"AlarmDescription,omitempty"`
	Longitude        *float64   `xml:"Longitude,omitempty"`
	Latitude         *float64   `xml:"Latitude,omitempty"`
	Info             *alarmInfo `xml:"Info,omitempty"`
}

// AlarmNotify builds the Notify Alarm body; times are written in loc.
func AlarmNotify(h Header, a Alarm, loc *time.Location) ([]byte, error) {
	if err := ValidateID(a.DeviceID); err != nil {
		return nil, fmt.Errorf("manscdp: alarm: %w", err)
	}
	if a.Priority < PriorityFirst || a.Priority > PriorityFourth {
		return nil, fmt.Errorf("manscdp: alarm %s: priority %d, want 1-4", a.DeviceID, a.Priority)
	}
	if a.Method < MethodTelephone || a.Method > MethodOther {
		return nil, fmt.Errorf("manscdp: alarm %s: method %d, want 1-7", a.DeviceID, a.Method)
	}
	n := alarmNotify{
		CmdType: CmdAlarm, SN: h.SN, DeviceID: a.DeviceID, AlarmPriority: int(a.Priority), AlarmMethod: int(a.Method),
		AlarmTime: FormatTime(a.Time, loc), AlarmDescription: a.Description, Longitude: a.Longitude, Latitude: a.Latitude,
	}
	if a.Type != 0 {
		n.Info = &alarmInfo{AlarmType: a.Type}
		if a.EventType != 0 {
			n.Info.AlarmTypeParam = &alarmTypeParam{EventType: a.EventType}
		}
	}
	return marshal(n, h.Charset)
}
