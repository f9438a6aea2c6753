// Strings of the setup page in English and Simplified Chinese.
export const strings = {
  en: {
    title: 'Vigil — entrance setup',
    'login.title': 'Setup code',
    'login.hint': "The code is printed in the box's log on first boot and kept in its data directory (setup-code).",
    'login.go': 'Open setup',
    'enrol.title': '1. Box and central',
    'cam.title': '2. Find cameras',
    'cam.discover': 'Search the network (ONVIF)',
    'cam.url': 'RTSP address', 'cam.user': 'User', 'cam.password': 'Password',
    'cam.probe': 'Test camera',
    'cam.none': 'No ONVIF camera answered.',
    'cam.use': 'Use',
    'cam.probing': 'Testing the camera…',
    'cam.ok': 'Camera OK: {codec} {width}×{height} at {fps} fps',
    'cam.auth': 'password needed',
    'zone.title': '3. Draw zones',
    'zone.hint': 'Click on the picture to add corners; close the polygon to finish a zone.',
    'zone.close': 'Close polygon', 'zone.undo': 'Undo', 'zone.save': 'Check zones',
    'zone.ok': 'Zones are valid. Put this under the camera in edge.yaml:',
    'zone.none': 'Draw at least one closed zone first.',
    'gate.title': '4. Gates',
    'gate.hint': "Press the gate's button or open the door: each gate turns green when the box hears it.",
    'gate.none': 'No gates configured.',
    'test.title': '5. Self-test',
    'test.run': 'Run self-test',
    'test.running': 'Running the self-test…',
    'test.green': 'All green: this entrance is ready.',
    'test.red': '{n} check(s) red — fix them and run again.',
    'status.line': 'Box {edge}: central {central}.',
    'status.connected': 'connected', 'status.disconnected': 'not connected',
    'login.wrong': 'Wrong setup code.',
    'enrol.central': 'Central (edge hub)', 'enrol.token': 'Enrolment token', 'enrol.entrance': 'Entrance name',
    'enrol.tz': 'Time zone', 'enrol.ntp': 'NTP servers', 'enrol.again': "Enrol again (replace this box's credential)",
    'enrol.go': 'Enrol with central', 'enrol.working': 'Enrolling…',
    'enrol.done': 'Enrolled as {edge} at {site}. This page closes by itself 30 minutes after you leave (re-open it from central).',
    'enrol.not': 'This box is not enrolled yet: enter central\'s address and the one-time token from the administrator.',
    'zone.camera': 'Camera', 'zone.preview': 'Show motion (live)', 'zone.kindZone': 'zone', 'zone.kindMask': 'mask (never alarms)',
    'zone.sensitivity': 'Sensitivity', 'zone.apply': 'Save to camera',
    'zone.saved': 'Saved as config revision {rev} ({applied}).', 'zone.nocam': 'Choose a camera first.',
    'gate.live': 'Events as they arrive', 'finish': 'Finish and close the setup page', 'finished': 'Setup page closed.',
  },
  'zh-CN': {
    title: 'Vigil — 出入口安装',
    'login.title': '安装码',
    'login.hint': '安装码在设备首次启动时打印在日志中，并保存在数据目录（setup-code）。',
    'login.go': '进入安装',
    'enrol.title': '1. 设备与中心',
    'cam.title': '2. 查找摄像机',
    'cam.discover': '搜索网络（ONVIF）',
    'cam.url': 'RTSP 地址', 'cam.user': '用户名', 'cam.password': '密码',
    'cam.probe': '测试摄像机',
    'cam.none': '没有 ONVIF 摄像机应答。',
    'cam.use': '使用',
    'cam.probing': '正在测试摄像机…',
    'cam.ok': '摄像机正常：{codec} {width}×{height}，{fps} 帧/秒',
    'cam.auth': '需要密码',
    'zone.title': '3. 绘制区域',
    'zone.hint': '在画面上点击添加顶点；闭合多边形即完成一个区域。',
    'zone.close': '闭合多边形', 'zone.undo': '撤销', 'zone.save': '检查区域',
    'zone.ok': '区域有效。请把以下内容放到 edge.yaml 中该摄像机下：',
    'zone.none': '请先画出至少一个闭合区域。',
    'gate.title': '4. 道闸与门',
    'gate.hint': '按下道闸按钮或打开门：设备收到信号后该道闸变为绿色。',
    'gate.none': '未配置道闸。',
    'test.title': '5. 自检',
    'test.run': '运行自检',
    'test.running': '正在自检…',
    'test.green': '全部通过：此出入口已就绪。',
    'test.red': '{n} 项未通过 — 请修复后重试。',
    'status.line': '设备 {edge}：中心{central}。',
    'status.connected': '已连接', 'status.disconnected': '未连接',
    'login.wrong': '安装码错误。',
    'enrol.central': '中心地址（设备接入）', 'enrol.token': '注册令牌', 'enrol.entrance': '出入口名称',
    'enrol.tz': '时区', 'enrol.ntp': 'NTP 服务器', 'enrol.again': '重新注册（替换本设备的凭据）',
    'enrol.go': '向中心注册', 'enrol.working': '正在注册…',
    'enrol.done': '已注册为 {site} 的 {edge}。离开 30 分钟后本页面自动关闭（可由中心重新打开）。',
    'enrol.not': '本设备尚未注册：请输入中心地址和管理员给的一次性令牌。',
    'zone.camera': '摄像机', 'zone.preview': '显示运动（实时）', 'zone.kindZone': '区域', 'zone.kindMask': '屏蔽（永不报警）',
    'zone.sensitivity': '灵敏度', 'zone.apply': '保存到摄像机',
    'zone.saved': '已保存为配置版本 {rev}（{applied}）。', 'zone.nocam': '请先选择摄像机。',
    'gate.live': '实时事件', 'finish': '完成并关闭安装页面', 'finished': '安装页面已关闭。',
  },
};

let lang = localStorage.getItem('vigil.setup.lang') || (navigator.language.startsWith('zh') ? 'zh-CN' : 'en');

export function t(key, vars = {}) {
  const s = (strings[lang] && strings[lang][key]) || strings.en[key] || key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : ''));
}

export function getLang() { return lang; }

export function setLang(l) {
  lang = strings[l] ? l : 'en';
  localStorage.setItem('vigil.setup.lang', lang);
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
}
