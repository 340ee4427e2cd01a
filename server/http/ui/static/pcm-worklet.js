// AudioWorklet: the microphone's float samples (any rate) -> 16 kHz mono 16-bit little-endian PCM frames,
// posted to the page as ArrayBuffers of `frameSamples` samples (100 ms by default).
// Down-sampling averages the input samples that fall within each output sample (a box filter: enough
// against aliasing for speech, and exact when the context already runs at 16 kHz).

class Pcm16k extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const settings = options.processorOptions || {};
    this.frameSamples = settings.frameSamples || 1600;
    this.step = sampleRate / (settings.targetRate || 16000); // input samples per output sample
    this.position = 0;
    this.sum = 0;
    this.count = 0;
    this.newFrame();
    this.port.onmessage = (event) => {
      if (event.data === "flush") {
        this.post();
        this.port.postMessage("flushed");
      }
    };
  }

  newFrame() {
    this.frame = new DataView(new ArrayBuffer(this.frameSamples * 2));
    this.filled = 0;
  }

  post() {
    if (this.filled === 0) return;
    const buffer = this.frame.buffer.slice(0, this.filled * 2);
    this.port.postMessage(buffer, [buffer]);
    this.newFrame();
  }

  push(sample) {
    const clamped = Math.max(-1, Math.min(1, sample));
    this.frame.setInt16(this.filled * 2, clamped < 0 ? clamped * 0x8000 : clamped * 0x7fff, true);
    this.filled += 1;
    if (this.filled === this.frameSamples) this.post();
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    const length = channels[0].length;
    for (let i = 0; i < length; i += 1) {
      let sample = 0;
      for (const channel of channels) sample += channel[i];
      this.sum += sample / channels.length;
      this.count += 1;
      this.position += 1;
      if (this.position >= this.step) {
        this.position -= this.step;
        this.push(this.sum / this.count);
        this.sum = 0;
        this.count = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm16k", Pcm16k);
