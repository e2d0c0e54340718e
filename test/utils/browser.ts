/**
 * Debian's Chromium for the real-browser tests (playwright-core drives it; no browser download).
 */
import fs from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** The flags this machine needs: no sandbox as root, and no background traffic to Google's hosts. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Whether Chromium is installed; when not, says which suite skips and how to install it. */
export function chromiumAvailable(suite: string): boolean {
  const present = fs.existsSync(CHROMIUM);
  if (!present) console.log(`Skipping ${suite}: ${CHROMIUM} is absent (apt-get install -y chromium).`);
  return present;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}
