package conf

import "github.com/vigil-perimeter/vigil/sensors"

// sensorErrors checks sensors: and sensor_inputs: as a whole (package
// sensors owns their types and rules: sensors.Problems); each problem
// names its field (sensors[2].warn, sensor_inputs.modbus.devices[0].address).
func (c *Config) sensorErrors(errs *fieldErrors) {
	*errs = append(*errs, sensors.Problems(c.Sensors, c.SensorInputs)...)
}
