// Keys and clicks of a review queue (ui/review_keys.py fills in REVIEW_KEYS: the panel's class
// `scope`, the card's class `card` and the key map `keys`, e.g. {a: 'accept', s: 'skip'}).
// A key press or a click on a card's button becomes one command, this component's value (JSON),
// sent with the key of the card it was made on, so a late key press never acts on the next card.
// Keys never fire while typing in a text box, with a modifier held, or when the queue's tab is
// not shown.
const REVIEW_KEYS = __REVIEW_KEYS__;
const scope = () => element.closest(REVIEW_KEYS.scope) || document;
const send = (detail) => { props.value = JSON.stringify({...detail, nonce: Date.now() + Math.random()}); };
const currentCard = () => scope().querySelector(REVIEW_KEYS.card);
const cardKey = () => { const c = currentCard(); return c ? c.dataset.key : ''; };
document.addEventListener('keydown', (e) => {
  const t = e.target;
  if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
  if (t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return;
  const card = currentCard();
  if (!card || card.offsetParent === null) return;  // this tab is not shown
  const action = REVIEW_KEYS.keys[e.key.toLowerCase()];
  if (!action) return;
  e.preventDefault();
  send({action: action, key: cardKey()});
});
document.addEventListener('click', (e) => {
  if (!scope().contains(e.target)) return;
  const button = e.target.closest('[data-action]');
  if (button) return send({action: button.dataset.action, key: button.dataset.key || cardKey()});
  const goto = e.target.closest('[data-goto]');
  if (goto) return send({action: 'goto', key: goto.dataset.goto});
  const choose = e.target.closest('[data-choose]');
  if (choose) send({action: 'choose', key: cardKey(), id: choose.dataset.choose});
});
