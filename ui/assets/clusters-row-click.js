// A click on a row of the Clusters tab's table chooses that cluster in the list (ui/clusters_page.py).
element.addEventListener('click', (e) => {
  const row = e.target.closest('tr[data-cluster]');
  if (!row) return;
  const input = document.querySelector(`#es-cl-pick input[value="${row.dataset.cluster}"]`);
  if (input && !input.checked) input.click();
});
