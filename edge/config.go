// Package edge is the node at an entrance: it wires cameras, analysis,
// the durable outbox and the uplink to central together, and serves the
// box's local API.
package edge

import (
	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/edge/conf"
)

// edge.yaml's types, defaults, loading and validation live in edge/conf;
// these aliases keep the callers outside package edge (cmd, the CLI, the
// demo, e2e and the test rig) compiling. Inside package edge, use conf.

// Config is edge.yaml; the type lives in edge/conf.
type Config = conf.Config

// CentralConfig says how to reach central; the type lives in edge/conf.
type CentralConfig = conf.CentralConfig

// RecordingConfig budgets the clip store; the type lives in edge/conf.
type RecordingConfig = conf.RecordingConfig

// CameraConfig is one camera; the type lives in edge/conf.
type CameraConfig = conf.CameraConfig

// AnalysisConfig is how much of a stream is analysed; the type lives in edge/conf.
type AnalysisConfig = conf.AnalysisConfig

// EdgeAnalysisConfig is edge.yaml's analysis: block (motion incidents).
type EdgeAnalysisConfig = conf.EdgeAnalysisConfig

// IncidentConfig is analysis.motion: how motion events group into
// incidents (one alert per activity).
type IncidentConfig = conf.IncidentConfig

// MotionConfig tunes a camera's motion detector; the type lives in edge/conf.
type MotionConfig = conf.MotionConfig

// LineConfig is a camera's tripwire (edge.yaml lines:).
type LineConfig = conf.LineConfig

// DwellConfig is a camera's loitering rule (edge.yaml dwell:).
type DwellConfig = conf.DwellConfig

// PerimeterTuning is a camera's perimeter: block.
type PerimeterTuning = conf.PerimeterTuning

// GateConfig is one gate; the type lives in edge/conf.
type GateConfig = conf.GateConfig

// ArmingConfig says when a gate is armed; the type lives in edge/conf.
type ArmingConfig = conf.ArmingConfig

// GateInputsConfig is how gate events reach the box; the type lives in edge/conf.
type GateInputsConfig = conf.GateInputsConfig

// WebhookInputConfig is the gate webhook; the type lives in edge/conf.
type WebhookInputConfig = conf.WebhookInputConfig

// WebhookControllerConfig is one webhook controller; the type lives in edge/conf.
type WebhookControllerConfig = conf.WebhookControllerConfig

// NotEnrolledHint is what an edge without a credential is told to do; the
// constant lives in edge/conf.
const NotEnrolledHint = conf.NotEnrolledHint

// LoadConfig reads and validates edge.yaml; VIGIL_EDGE_TOKEN overrides the
// token. It is conf.Load, which lives in edge/conf.
func LoadConfig(path string) (Config, error) { return conf.Load(path) }

// clipsBudget is the clip store's budget for a camera under r.
func clipsBudget(r conf.RecordingConfig) clips.CameraConfig {
	return clips.CameraConfig{
		MaxBytes: int64(r.MaxGiBPerCamera * (1 << 30)), MaxAge: r.MaxAge.D(),
		PreRoll: r.PreRoll.D(), PostRoll: r.PostRoll.D(),
	}
}
