package demofw

// Trying settings once. Mongoose OS saves a configuration level with
// try_once as confN.json.try, which the next boot loads instead of
// confN.json and deletes at once: a change that breaks the device is gone
// after one more reboot, and whoever asked for it confirms it by saving
// again (Config.Save without try_once), which writes confN.json.
//
// The demo's Wi-Fi library settles a trial by itself as well, as firmware
// that is offline cannot wait for a host: when the station, started with
// settings on trial, gets an IP address, the trial is confirmed and saved;
// when its first attempt fails (wrong password, network not found), the
// firmware logs why and restarts, and the saved settings come back.

// settleTrial ends the trial after the station's first attempt. It
// reports whether the firmware is reverting (and restarting).
func (fw *demoFirmware) settleTrial(connected bool) bool {
	fw.task.Lock()
	defer fw.task.Unlock()
	if !fw.trial.Load() {
		return false // confirmed meanwhile
	}
	if connected {
		for _, level := range fw.trialLevels {
			if err := fw.saveConfig(level, false); err != nil {
				fw.logf(logError, "mgos_sys_config.c:440", "Saving the tried config failed: %v", err)
			}
		}
		return false
	}
	fw.trial.Store(false)
	fw.logf(logError, "mgos_sys_config.c:446", "Config on trial failed (WiFi STA cannot connect), reverting to the saved config")
	fw.goAsync(func() {
		if fw.pause(configRebootDelay) == nil {
			fw.restartNow()
		}
	})
	return true
}
