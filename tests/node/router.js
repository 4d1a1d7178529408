'use strict';
// An Express app that routes webhooks the way a Node upstream behind hookgate would, for the
// route differential test (tests/it/routes.rs): it answers with the name of the handler that
// ran, so the test sees which of the app's routes a raw target reached. Prints `PORT n`.
const express = require('express');

const app = express();
const answer = (name) => (req, res) => {
  req.resume();
  req.on('end', () => res.type('text/plain').send(name));
};
for (const method of ['post', 'put']) {
  app[method]('/copyleaks/completed/:scan', answer('status'));
  app[method]('/copyleaks/export/:scan', answer('export'));
}
app.use((req, res) => res.status(404).type('text/plain').send('none'));

const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
