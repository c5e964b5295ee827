// Drives telegram-test-api (an independent Bot API emulator) for the
// Telegram adapter's smoke test: starts it on 127.0.0.1:PORT, prints
// "listening PORT", waits for "go" on stdin (the daemon is up), plays a
// patient (/start, a button press, /help), and prints "ok" and how many
// getUpdates the bot made, or "fail: why" and exits 1.
// Usage: node emulator.js PORT TOKEN
'use strict';
const TelegramServer = require('telegram-test-api');
const readline = require('readline');

const port = Number(process.argv[2]);
const token = process.argv[3];
const USER = 5000000001;

async function expectText(client, needle, seen) {
  const end = Date.now() + 30000;
  while (Date.now() < end) {
    const got = await client.getUpdates().catch(() => ({ result: [] }));
    for (const u of got.result || []) {
      const text = (u.message && u.message.text) || '';
      console.log('bot: ' + JSON.stringify(text));
      seen.push(u.message);
    }
    const hit = seen.find((m) => m && (m.text || '').includes(needle));
    if (hit) return hit;
  }
  throw new Error('no bot message with ' + JSON.stringify(needle));
}

async function main() {
  const server = new TelegramServer({ port, host: '127.0.0.1' });
  let polls = 0;
  const getUpdates = server.getUpdates.bind(server);
  server.getUpdates = (t) => { polls++; return getUpdates(t); };
  await server.start();
  console.log('listening ' + port);
  const rl = readline.createInterface({ input: process.stdin });
  await new Promise((resolve) => rl.once('line', resolve));
  const t0 = Date.now();
  const client = server.getClient(token, { userId: USER, chatId: USER,
    timeout: 30000, interval: 100 });
  const seen = [];
  try {
    await client.sendCommand(client.makeCommand('/start'));
    const consent = await expectText(client, 'Do you agree?', seen);
    const kb = consent.reply_markup && consent.reply_markup.inline_keyboard;
    if (!kb || kb[0][0].callback_data !== 'a:setup:1:yes')
      throw new Error('the consent question has no yes button');
    await client.sendCallback(client.makeCallbackQuery('a:setup:1:yes'));
    await expectText(client, 'Which time zone', seen);
    await client.sendMessage(client.makeMessage('/help'));
    await expectText(client, 'Here is what I understand', seen);
    const secs = (Date.now() - t0) / 1000;
    console.log('ok polls ' + polls + ' seconds ' + secs.toFixed(1));
  } catch (e) {
    console.log('fail: ' + e.message);
    process.exitCode = 1;
  }
  rl.close();
  await server.stop();
}

main().catch((e) => { console.log('fail: ' + e.message); process.exit(1); });
