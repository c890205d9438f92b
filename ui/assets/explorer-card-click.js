// A click on a card of the grid or the detail view opens that point (ui/explorer.py).
element.addEventListener('click', (e) => {
  const card = e.target.closest('[data-id]');
  if (card && card.classList.contains('es-card')) trigger('click', {id: card.dataset.id});
});
