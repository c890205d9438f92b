// Navigates as soon as the handler sends a link marked data-go (ui/handoff.py: a same-tab page change).
watch('value', () => {
  const link = element.querySelector('a[data-go]');
  if (link) window.location.assign(link.getAttribute('href'));
});
