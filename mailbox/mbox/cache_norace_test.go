//go:build !race

package mbox

// raceEnabled says the race detector is on: memory figures are then
// meaningless.
const raceEnabled = false
