// The browser phone of the operator desktop: one WebRTC peer connection to the node (audio
// only), signalled over /api/v1/phone (the signed-in session is the identity). While it is up
// the operator's calls and queue offers ring here too; answer, hang up, mute, keypad (RFC 4733
// through the node), hold, microphone choice, ringing tone, call timer and level meter. When the
// signalling drops the phone shows it, closes its media and connects again. A call in progress
// is kept by the node for a while (its grace period): the page connects again with the call's
// rejoin token (`?rejoin=1`, then a `rejoin` message), makes a new peer connection, and the
// call's audio comes back (`rejoined`); the call timer runs on meanwhile.
// `window.callwardenPhone` exposes the received audio's analyser (the level meter's) to tests
// and diagnostics, and `interrupt()`, which drops the socket and the peer connection as a
// network change does.
import { formatDuration, t } from "./common.js";

const SESSION_ENDED = 4401;
const MEDIA_LOST = 4000; // closed by the page to take its call back over a new connection
const DISCONNECTED_MS = 4000; // a call's peer connection "disconnected" this long is lost
const root = document.getElementById("phone");
const status = document.getElementById("phone-status");
const connectButton = document.getElementById("phone-connect");
const answerButton = document.getElementById("phone-answer");
const hangUpButton = document.getElementById("phone-hang-up");
const muteButton = document.getElementById("phone-mute");
const holdButton = document.getElementById("phone-hold");
const timer = document.getElementById("phone-time");
const meter = document.getElementById("phone-level");
const remoteAudio = document.getElementById("phone-audio");
const deviceChoice = document.getElementById("phone-device");

const phone = {
  socket: null, pc: null, microphone: null, context: null, analyser: null, ringer: null,
  state: "off", callId: null, since: 0, muted: false, wanted: false, delay: 500,
  rejoin: null, // while a call can be taken back: {token, callId, within (s), lostAt}
  openedOnce: false,
};

function show(state) {
  phone.state = state;
  root.dataset.phone = state;
  status.textContent = t(`phone.state_${state}`);
  connectButton.hidden = state !== "off" && state !== "unavailable";
  answerButton.hidden = state !== "ringing";
  const inCall = state === "talking" || state === "held";
  hangUpButton.hidden = state !== "ringing" && !inCall;
  const timed = inCall || state === "rejoining";
  muteButton.hidden = state !== "talking";
  holdButton.hidden = !inCall;
  holdButton.setAttribute("aria-pressed", String(state === "held"));
  holdButton.textContent = t(state === "held" ? "phone.resume" : "phone.hold");
  document.getElementById("phone-keypad").hidden = state !== "talking";
  if (!timed) timer.textContent = "";
  ring(state === "ringing");
}

function send(message) {
  if (phone.socket?.readyState === WebSocket.OPEN) phone.socket.send(JSON.stringify(message));
}

function audioContext() {
  if (phone.context === null) {
    phone.context = new AudioContext();
    phone.analyser = phone.context.createAnalyser();
    phone.analyser.fftSize = 8192;
  }
  return phone.context;
}

/** A soft two-tone ring from the page itself while a call rings. */
function ring(on) {
  if (!on) {
    if (phone.ringer !== null) {
      phone.ringer.stop();
      phone.ringer = null;
    }
    return;
  }
  if (phone.ringer !== null) return;
  const context = audioContext();
  const oscillator = context.createOscillator();
  const gain = context.createGain();
  oscillator.frequency.value = 425;
  gain.gain.value = 0.05;
  oscillator.connect(gain).connect(context.destination);
  oscillator.start();
  phone.ringer = oscillator;
}

function closeMedia() {
  phone.pc?.close();
  phone.pc = null;
  phone.callId = null;
  remoteAudio.srcObject = null;
}

/** Lists the microphones (their names are known once one is allowed) to choose a headset. */
async function listDevices() {
  const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "audioinput");
  const current = phone.microphone?.getAudioTracks()[0]?.getSettings().deviceId;
  deviceChoice.replaceChildren(
    ...devices.map((device, index) => {
      const option = new Option(device.label || `${t("phone.device")} ${index + 1}`, device.deviceId);
      option.selected = device.deviceId === current;
      return option;
    }),
  );
  document.getElementById("phone-device-line").hidden = devices.length === 0;
}

/** Switches the microphone, in a call too (the sender's track is replaced, no renegotiation). */
async function chooseDevice() {
  const chosen = await navigator.mediaDevices.getUserMedia({
    audio: { deviceId: { exact: deviceChoice.value } },
    video: false,
  });
  const [track] = chosen.getAudioTracks();
  track.enabled = !phone.muted;
  const sender = phone.pc?.getSenders().find((s) => s.track?.kind === "audio");
  if (sender) await sender.replaceTrack(track);
  for (const old of phone.microphone?.getTracks() ?? []) old.stop();
  phone.microphone = chosen;
}

async function startMedia(iceServers, iceTransportPolicy = "all") {
  if (phone.microphone === null) {
    phone.microphone = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
    await listDevices();
  }
  const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy });
  phone.pc = pc;
  const [track] = phone.microphone.getAudioTracks();
  track.enabled = !phone.muted;
  pc.addTransceiver(track, { direction: "sendrecv", streams: [phone.microphone] });
  pc.addEventListener("track", (event) => {
    const stream = event.streams[0] ?? new MediaStream([event.track]);
    remoteAudio.srcObject = stream; // Chromium feeds WebAudio only from a playing element
    const source = audioContext().createMediaStreamSource(stream);
    source.connect(phone.analyser);
  });
  pc.addEventListener("connectionstatechange", () => {
    if (phone.pc !== pc) return;
    if (pc.connectionState === "failed") phone.socket?.close(MEDIA_LOST, "media_failed");
    if (pc.connectionState === "disconnected" && phone.rejoin !== null) {
      window.setTimeout(() => {
        if (phone.pc === pc && pc.connectionState === "disconnected") phone.socket?.close(MEDIA_LOST, "media_lost");
      }, DISCONNECTED_MS);
    }
  });
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  if (iceTransportPolicy === "relay" && !pc.localDescription.sdp.includes(" typ relay")) {
    closeMedia(); // relay only (the node's setting) and the TURN server gave no relay
    throw new Error("relay_failed");
  }
  send({ type: "offer", sdp: pc.localDescription.sdp });
}

function gathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    const done = () => {
      if (pc.iceGatheringState === "complete") resolve();
    };
    pc.addEventListener("icegatheringstatechange", done);
    window.setTimeout(resolve, 3000);
  });
}

const handlers = {
  welcome: (message) => {
    if (message.rejoined && phone.rejoin !== null) {
      phone.rejoin.token = message.rejoined.token;
      phone.callId = message.rejoined.call_id;
    } else {
      phone.rejoin = null; // the call could not be taken back: it has ended
      show("connecting");
    }
    startMedia(message.ice_servers, message.ice_transport_policy).catch((error) => {
      console.warn(`browser phone: ${error}`);
      show(error.message === "relay_failed" ? "relay_failed" : "no_microphone");
    });
  },
  answer: (message) => phone.pc?.setRemoteDescription({ type: "answer", sdp: message.sdp }),
  ready: () => show("ready"),
  ringing: (message) => {
    phone.callId = message.call_id;
    show("ringing");
  },
  connected: (message) => {
    phone.since = Date.now();
    phone.rejoin = message.rejoin_token
      ? { token: message.rejoin_token, callId: message.call_id, within: message.rejoin_seconds, lostAt: 0 }
      : null;
    show("talking");
  },
  held: () => show("held"),
  resumed: () => show("talking"),
  rejoined: (message) => {
    if (phone.rejoin !== null) phone.rejoin.lostAt = 0;
    show(message.held ? "held" : "talking");
  },
  media_lost: () => {
    if (phone.rejoin !== null) phone.socket?.close(MEDIA_LOST, "media_lost");
  },
  ended: () => {
    phone.callId = null;
    phone.rejoin = null;
    show("ready");
  },
  closed: () => {
    phone.rejoin = null;
    closeMedia();
  },
  error: (message) => console.warn(`browser phone: ${message.error_id}`),
  pong: () => {},
};

/** Whether the call dropped with the connection may still be taken back (the node's grace). */
function rejoinable() {
  const rejoin = phone.rejoin;
  if (rejoin === null) return false;
  if (rejoin.lostAt === 0) rejoin.lostAt = Date.now();
  if (Date.now() - rejoin.lostAt < (rejoin.within ?? 0) * 1000) return true;
  phone.rejoin = null;
  return false;
}

function connect() {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const rejoin = phone.rejoin;
  const query = rejoin === null ? "" : "?rejoin=1";
  const socket = new WebSocket(`${scheme}://${window.location.host}/api/v1/phone${query}`);
  phone.socket = socket;
  let opened = false;
  socket.addEventListener("open", () => {
    opened = true;
    phone.openedOnce = true; // from now on a lost connection is tried again, not given up
    phone.delay = 500;
    if (rejoin !== null) socket.send(JSON.stringify({ type: "rejoin", token: rejoin.token }));
  });
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    handlers[message.type]?.(message);
  });
  socket.addEventListener("close", (event) => {
    if (phone.socket !== socket) return;
    closeMedia();
    phone.socket = null;
    if (event.code === SESSION_ENDED || !phone.wanted) {
      phone.rejoin = null;
      show(event.code === 4503 ? "unavailable" : "off");
      return;
    }
    const keeping = rejoinable();
    if (!opened && !phone.openedOnce) {
      show("unavailable"); // refused (no access to a phone here) or unreachable: ask again by hand
      return;
    }
    show(keeping ? "rejoining" : "reconnecting");
    window.setTimeout(connect, phone.delay);
    phone.delay = Math.min(phone.delay * 2, keeping ? 1000 : 10000);
  });
}

window.addEventListener("pagehide", () => {
  phone.wanted = false;
  phone.socket?.close(1000, "page_closed"); // leaving the page ends its call
});

connectButton.addEventListener("click", () => {
  phone.wanted = true;
  phone.openedOnce = false;
  audioContext().resume();
  show("connecting");
  connect();
});
deviceChoice.addEventListener("change", () =>
  chooseDevice().catch((error) => console.warn(`browser phone: ${error}`)),
);
answerButton.addEventListener("click", () => send({ type: "answer_call" }));
hangUpButton.addEventListener("click", () => send({ type: "hang_up" }));
holdButton.addEventListener("click", () => send({ type: phone.state === "held" ? "resume" : "hold" }));
muteButton.addEventListener("click", () => {
  phone.muted = !phone.muted;
  for (const track of phone.microphone?.getAudioTracks() ?? []) track.enabled = !phone.muted;
  muteButton.setAttribute("aria-pressed", String(phone.muted));
  muteButton.textContent = t(phone.muted ? "phone.unmute" : "phone.mute");
});
for (const key of document.querySelectorAll("#phone-keypad button[data-digit]")) {
  key.addEventListener("click", () => send({ type: "dtmf", digit: key.dataset.digit }));
}

function level() {
  if (phone.analyser !== null) {
    const samples = new Float32Array(phone.analyser.fftSize);
    phone.analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const sample of samples) sum += sample * sample;
    meter.value = Math.min(1, Math.sqrt(sum / samples.length) * 4);
  }
  if (["talking", "held", "rejoining"].includes(phone.state)) timer.textContent = formatDuration((Date.now() - phone.since) / 1000);
}
window.setInterval(level, 200);
window.setInterval(() => send({ type: "ping" }), 20000);

window.callwardenPhone = {
  /** The received audio's spectrum: {sampleRate, binHz, decibels[]} (AnalyserNode). */
  spectrum() {
    if (phone.analyser === null) return null;
    const decibels = new Float32Array(phone.analyser.frequencyBinCount);
    phone.analyser.getFloatFrequencyData(decibels);
    const sampleRate = phone.context.sampleRate;
    return { sampleRate, binHz: sampleRate / phone.analyser.fftSize, decibels: Array.from(decibels) };
  },
  state: () => phone.state,
  /** Drops the signalling socket and the peer connection at once, as a network change does. */
  interrupt() {
    phone.pc?.close();
    phone.socket?.close(MEDIA_LOST, "interrupted");
  },
};

show("off");
