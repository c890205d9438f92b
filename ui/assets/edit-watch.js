// The page's record of an edit the server has not confirmed yet (tag add / remove, set or
// restore labels). The server's reply to an edit sets this control's value; an edit without a
// reply after WAIT_MS is said to be unconfirmed, and one still unconfirmed when the page
// reloads (Gradio reloads it once a restarted server is back) is reported on the new page:
// for a tag, whether the tag's count changed, read from the tag list the new page shows.
// Everything is written with textContent: tag and label names are user text.
const root = element.querySelector('.es-edit-watch');
const KEY = 'embedscape:unconfirmed-edit:' + location.pathname;
const WAIT_MS = 5000;

function inputValue(selector) {
  const input = document.querySelector(selector);
  return input ? input.value.trim() : '';
}

// How many points have `name`, from the tag list ("name (count)"); 0 when it is not listed.
function tagCount(name) {
  for (const label of document.querySelectorAll('#es-tag-list label')) {
    const match = /^(.*) \(([\d,]+)\)$/.exec(label.textContent.trim());
    if (match && match[1] === name) return Number(match[2].replace(/,/g, ''));
  }
  return 0;
}

const EDITS = {
  'es-tag-add': () => ({what: 'add tag', name: inputValue('#es-tag input')}),
  'es-tag-remove': () => ({what: 'remove tag', name: inputValue('#es-tag input')}),
  'es-relabel': () => ({what: 'set label', name: inputValue('#es-relabel-label input')}),
  'es-relabel-restore': () => ({what: 'restore original labels', name: ''}),
};

function describe(edit) {
  return edit.name ? `${edit.what} '${edit.name}'` : edit.what;
}

function say(text, state) {
  root.textContent = text;
  root.hidden = !text;
  root.dataset.state = state || '';
}

function pending() {
  try { return JSON.parse(sessionStorage.getItem(KEY) || 'null'); } catch (error) { return null; }
}

let timer = null;
document.addEventListener('click', (event) => {
  const button = event.target.closest ? event.target.closest('button') : null;
  if (!button || !EDITS[button.id]) return;
  const edit = EDITS[button.id]();
  if (edit.what.endsWith('tag')) edit.countBefore = tagCount(edit.name);
  edit.at = Date.now();
  sessionStorage.setItem(KEY, JSON.stringify(edit));
  say('', '');
  clearTimeout(timer);
  timer = setTimeout(() => {
    const left = pending();
    if (left) say(`Not confirmed: the server has not answered "${describe(left)}" (it may have stopped). ` +
                  'Edits it confirmed are saved; this page will say what became of this one once it reconnects.',
                  'unconfirmed');
  }, WAIT_MS);
}, true);

watch('value', () => {  // the server answered the edit (its own message says what it did)
  clearTimeout(timer);
  sessionStorage.removeItem(KEY);
  say('', '');
});

root.addEventListener('click', () => say('', ''));

// A new page after the server came back: what happened to the edit it never confirmed.
(function reportAfterReload() {
  const left = pending();
  if (!left) return;
  sessionStorage.removeItem(KEY);
  const when = new Date(left.at).toLocaleTimeString();
  const head = `The server stopped before it confirmed "${describe(left)}" (sent ${when}). `;
  if (left.countBefore === undefined) {
    say(head + 'Edits it confirmed are saved; check this one and do it again if it is missing. (Click to dismiss.)',
        'lost');
    return;
  }
  (function wait(tries) {  // the tag list fills in once the page has its data
    if (!document.querySelector('#es-tag-list') && tries > 0) { setTimeout(() => wait(tries - 1), 200); return; }
    const now = tagCount(left.name);
    const saved = now !== left.countBefore;
    say(head + (saved ? `It was saved: ${now.toLocaleString()} points have '${left.name}' now.`
                      : `It was not saved: ${now.toLocaleString()} points have '${left.name}', as before. Select and do it again.`)
        + ' (Click to dismiss.)', saved ? 'saved' : 'lost');
  })(50);
})();
