package device

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-perimeter/vigil/gb28181/manscdp"
)

// Kind is what a channel is in the platform's catalog.
type Kind string

// Channel kinds.
const (
	KindCamera Kind = "camera"
	KindAlarm  Kind = "alarm"
)

// Channel is one camera or alarm input the edge offers the platform, with
// the 20-digit ID the platform's administrator assigned it.
type Channel struct {
	ID     string
	Name   string
	Kind   Kind
	Online bool
	// Address is where it is (site, gate); CivilCode the administrative
	// division code the platform files it under (default: the device's
	// domain).
	Address   string
	CivilCode string
	// Manufacturer and Model of the camera; empty means the edge's.
	Manufacturer, Model string
	// Longitude and Latitude, when known (WGS-84).
	Longitude, Latitude *float64
	// Armed and Alarming give an alarm input's duty status.
	Armed, Alarming bool
}

// Validate checks a channel as edge.yaml gives it: a 20-digit ID whose
// type code fits its kind (camera 131 or 132, alarm input 134) and a name.
func (c Channel) Validate() error {
	switch c.Kind {
	case KindCamera:
		if err := manscdp.ValidateID(c.ID, manscdp.TypeIPC, manscdp.TypeCamera); err != nil {
			return fmt.Errorf("camera channel: %w", err)
		}
	case KindAlarm:
		if err := manscdp.ValidateID(c.ID, manscdp.TypeAlarmInput); err != nil {
			return fmt.Errorf("alarm channel: %w", err)
		}
	default:
		return fmt.Errorf("channel %s: kind %q, want camera or alarm", c.ID, c.Kind)
	}
	if c.Name == "" {
		return fmt.Errorf("channel %s: empty name", c.ID)
	}
	return nil
}

// Health is the edge's running state for DeviceStatus answers.
type Health struct {
	// OK is false when the edge works with a fault named by Reason.
	OK        bool
	Reason    string
	Encoding  bool
	Recording bool
}

// Provider is what the edge gives the device user agent: its channels and
// health, read at each query so answers always reflect the config in force.
type Provider interface {
	Channels() []Channel
	Health() Health
}

// Records is an optional Provider extension that answers RecordInfo
// queries from the clip store; without it RecordInfo is refused with 501.
type Records interface {
	Records(ctx context.Context, channelID string, start, end time.Time, typ string) ([]manscdp.RecordItem, error)
}

// Invite is a platform's request for media on one channel.
type Invite struct {
	CallID    string
	ChannelID string
	// Subject is the INVITE's Subject header
	// ("channelID:ssrc,receiverID:0").
	Subject string
	// SDP is the platform's offer (s=Play, Playback or Download).
	SDP []byte
	// From is the requesting platform or user.
	From string
}

// Media is the seam for live, playback and download sessions: the device
// user agent owns SIP (transactions, dialogs), a Media implementation owns
// SDP and RTP. Without one, INVITEs are refused with 501.
type Media interface {
	// Invite returns the SDP answer for inv; an error (a *StatusError to
	// pick the code) refuses it.
	Invite(ctx context.Context, inv Invite) (answer []byte, err error)
	// Ack tells that the platform confirmed the session: media may flow.
	Ack(ctx context.Context, callID string)
	// Bye ends the session (the platform hung up).
	Bye(ctx context.Context, callID string)
	// Info carries MANSRTSP playback control (PLAY with Scale or Range,
	// PAUSE, TEARDOWN) within a session.
	Info(ctx context.Context, callID, contentType string, body []byte) error
}

// StatusError refuses a request with a SIP status.
type StatusError struct {
	Code   int
	Reason string
}

func (e *StatusError) Error() string { return fmt.Sprintf("%d %s", e.Code, e.Reason) }
