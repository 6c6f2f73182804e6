package demofw

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// The RPC methods of the demo firmware and their answers, as mgos's core,
// rpc-service-config, -fs and -wifi libraries give them.

type rpcMethod struct {
	name    string
	handler rpcHandler
}

// rpcMethods is the demo's RPC service in the order the firmware's
// libraries register their handlers at init; RPC.List prints it newest
// first. (A function, not a variable: rpcList refers back to it.)
func rpcMethods() []rpcMethod {
	return []rpcMethod{
		{"Sys.GetInfo", sysGetInfo},
		{"Sys.Reboot", sysReboot},
		{"Sys.Crash", sysCrash}, // crash.go: not in Mongoose OS
		{"Config.Get", configGet},
		{"Config.Set", configSet},
		{"Config.Save", configSave},
		{"FS.List", fsList},
		{"FS.ListExt", fsListExt},
		{"FS.Get", fsGet},
		{"FS.Put", fsPut},
		{"FS.Remove", fsRemove},
		{"FS.Rename", fsRename},
		{"Wifi.Scan", wifiScan},
		{"RPC.List", rpcList},
		{"RPC.Ping", rpcPing},
	}
}

// methods is this boot's RPC service: the methods that the identity
// libraries register at init when their hardware and settings allow
// (ATCA.*, MQTT.*, Crypto.*: see identity.go; they initialise before the
// RPC service libraries, so RPC.List prints them last), then the fixed ones.
func (fw *demoFirmware) methods() []rpcMethod {
	return append(slices.Clone(fw.extraMethods), rpcMethods()...)
}

// rpcHandlerFor finds the handler of method.
func (fw *demoFirmware) rpcHandlerFor(method string) (rpcHandler, bool) {
	for _, m := range fw.methods() {
		if m.name == method {
			return m.handler, true
		}
	}
	return nil, false
}

// The reboot delays Mongoose OS uses.
const (
	defaultRebootDelay = 100 * time.Millisecond // Sys.Reboot without delay_ms
	configRebootDelay  = 500 * time.Millisecond // Config.Set/Save with reboot
)

func sysGetInfo(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	type wifiInfo struct {
		STAIP  string `json:"sta_ip"`
		APIP   string `json:"ap_ip"`
		Status string `json:"status"`
		SSID   string `json:"ssid"`
	}
	info := struct {
		ID         string   `json:"id"`
		App        string   `json:"app"`
		FwVersion  string   `json:"fw_version"`
		FwID       string   `json:"fw_id"`
		MgVersion  string   `json:"mg_version"`
		MgID       string   `json:"mg_id"`
		MAC        string   `json:"mac"`
		Arch       string   `json:"arch"`
		Uptime     int64    `json:"uptime"`
		PublicKey  string   `json:"public_key"`
		RAMSize    int      `json:"ram_size"`
		RAMFree    int      `json:"ram_free"`
		RAMMinFree int      `json:"ram_min_free"`
		FSSize     int      `json:"fs_size"`
		FSFree     int      `json:"fs_free"`
		WiFi       wifiInfo `json:"wifi"`
	}{
		ID: fw.deviceID(), App: fw.app.name, FwVersion: fw.app.version, FwID: fw.app.buildID,
		MgVersion: mgosVersion, MgID: mgosBuildID,
		MAC:  fmt.Sprintf("%02X", fw.mac[:]),
		Arch: fw.chip.Key, Uptime: int64(time.Since(fw.start) / time.Second),
		PublicKey: fw.cfg.String("device.public_key"),
		RAMSize:   fw.ram.total, RAMFree: fw.ram.free, RAMMinFree: fw.ram.minFree,
	}
	if fw.fs != nil {
		info.FSSize, info.FSFree = fw.fs.Size(), fw.fs.Free()
	}
	info.WiFi.Status, info.WiFi.STAIP, info.WiFi.SSID = fw.wifi.get()
	if fw.cfg.Bool("wifi.ap.enable") {
		info.WiFi.APIP = fw.cfg.String("wifi.ap.ip")
	}
	return printfJSON(info), nil
}

func sysReboot(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	p := struct {
		DelayMS *int `json:"delay_ms"`
		Abort   bool `json:"abort"`
	}{}
	if err := call.decodeParams(&p); err != nil {
		return nil, err
	}
	if p.Abort {
		fw.rebootAt = time.Time{}
		return nil, nil
	}
	delay := defaultRebootDelay
	if p.DelayMS != nil {
		if *p.DelayMS < 0 {
			return nil, rpcErrorf(400, "invalid delay_ms %d", *p.DelayMS)
		}
		delay = time.Duration(*p.DelayMS) * time.Millisecond
	}
	fw.scheduleReboot(delay)
	return nil, nil
}

func configGet(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	p := struct {
		Key   string `json:"key"`
		Level *int   `json:"level"`
	}{}
	if err := call.decodeParams(&p); err != nil {
		return nil, err
	}
	level := maxLevel
	if p.Level != nil {
		if *p.Level < 0 || *p.Level > maxLevel {
			return nil, rpcErrorf(400, "invalid level %d", *p.Level)
		}
		level = *p.Level
	}
	out, err := fw.cfg.render(p.Key, level)
	if err != nil {
		return nil, configRPCError(err)
	}
	return out, nil
}

func configSet(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	p := struct {
		Config  json.RawMessage `json:"config"`
		Value   json.RawMessage `json:"value"`
		Key     string          `json:"key"`
		Level   *int            `json:"level"`
		Save    bool            `json:"save"`
		TryOnce bool            `json:"try_once"`
		Reboot  bool            `json:"reboot"`
	}{}
	if err := call.decodeParams(&p); err != nil {
		return nil, err
	}
	level := userLevel
	if p.Level != nil {
		if *p.Level < 1 || *p.Level > maxLevel {
			return nil, rpcErrorf(400, "invalid level %d", *p.Level)
		}
		level = *p.Level
	}
	tree := p.Config
	if len(tree) == 0 {
		tree = p.Value
	}
	if len(tree) == 0 {
		return nil, rpcErrorf(400, "config is required")
	}
	vals, err := fw.cfg.parseSet(p.Key, tree)
	if err != nil {
		return nil, configRPCError(err)
	}
	if err := fw.cfg.validate(level, vals); err != nil {
		return nil, configRPCError(err)
	}
	fw.cfg.set(level, vals)
	saved := false
	if p.Save {
		if err := fw.saveConfig(level, p.TryOnce); err != nil {
			return nil, rpcErrorf(-1, "error saving config: %v", err)
		}
		saved = true
	}
	if p.Reboot {
		fw.scheduleReboot(configRebootDelay)
	}
	return printfJSON(map[string]bool{"saved": saved}), nil
}

func configSave(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	p := struct {
		TryOnce bool `json:"try_once"`
		Reboot  bool `json:"reboot"`
	}{}
	if err := call.decodeParams(&p); err != nil {
		return nil, err
	}
	if err := fw.saveConfig(userLevel, p.TryOnce); err != nil {
		return nil, rpcErrorf(-1, "error saving config: %v", err)
	}
	if p.Reboot {
		fw.scheduleReboot(configRebootDelay)
	}
	return printfJSON(map[string]bool{"saved": true}), nil
}

func configRPCError(err error) *rpcError {
	if ce, ok := err.(*configError); ok {
		return &rpcError{Code: ce.code, Message: ce.msg}
	}
	return rpcErrorf(500, "%v", err)
}

// saveConfig writes a level's file: confN.json, or with tryOnce
// confN.json.try, which the next boot uses once and deletes. Saving
// confN.json on a trial boot commits what is on trial.
func (fw *demoFirmware) saveConfig(level int, tryOnce bool) error {
	if fw.fs == nil {
		return errNoFS
	}
	name := levelFileName(level)
	if tryOnce {
		name += ".try"
	}
	if err := fw.fs.Write(name, 0, fw.cfg.levelFile(level), true); err != nil {
		return err
	}
	if !tryOnce && fw.trial.Swap(false) {
		fw.logf(logInfo, "mgos_sys_config.c:421", "Config confirmed: %s saved", name)
	}
	return nil
}

func rpcList(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	var names []string
	for _, m := range fw.methods() {
		names = append(names, m.name)
	}
	slices.Reverse(names)
	return printfJSON(names), nil
}

func rpcPing(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	return printfJSON(map[string]string{"channel_info": "UART0"}), nil
}
